"""scripts/setup_server.sh: valid bash, clean under shellcheck, and `--check` changes nothing."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "setup_server.sh"


def test_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_shellcheck_finds_nothing():
    if shutil.which("shellcheck") is None:
        message = "shellcheck is not installed (apt-get install shellcheck)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    out = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_check_mode_reports_what_is_missing_and_changes_nothing(tmp_path):
    env = {**os.environ, "WORKSHOP_DIR": str(tmp_path / "workshop")}
    before = sorted(p.name for p in tmp_path.iterdir())
    passwd = Path("/etc/passwd").read_text()
    out = subprocess.run(["bash", str(SCRIPT), "--check"], capture_output=True, text=True, env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert f"setup_server: missing: virtual environment {tmp_path}/workshop/venv" in lines
    assert lines[-1].startswith("setup_server: ") and "missing: run sudo" in lines[-1]
    pg_up = subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"]).returncode == 0
    if pg_up and os.geteuid() == 0 and not Path("/etc/game-server/env").exists():
        assert "setup_server: missing: /etc/game-server/env (the game's database password)" in lines
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created
    assert Path("/etc/passwd").read_text() == passwd


def test_unknown_argument_is_a_one_line_error():
    out = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "--check" in out.stderr
