"""scripts/setup_server.sh: valid bash, clean under shellcheck, `--check` changes nothing,
and the shared venvs are built from the system's Python and runnable by any user."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from accounts_helpers import passwd_lines

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
    passwd = passwd_lines()
    out = subprocess.run(["bash", str(SCRIPT), "--check"], capture_output=True, text=True, env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert f"setup_server: missing: virtual environment {tmp_path}/workshop/venv" in lines
    game = f"{tmp_path}/workshop/game-venv/bin/game-server"
    assert f"setup_server: missing: /usr/local/bin/game-server -> {game}" in lines
    assert lines[-1].startswith("setup_server: ") and "missing: run sudo" in lines[-1]
    pg_up = subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"]).returncode == 0
    if pg_up and os.geteuid() == 0 and not Path("/etc/game-server/env").exists():
        assert "setup_server: missing: /etc/game-server/env (the game's database password)" in lines
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created
    assert passwd_lines() == passwd


def test_unknown_argument_is_a_one_line_error():
    out = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "--check" in out.stderr


# ---- the shared venvs: built from the system's Python, runnable by an unprivileged user.
# These source the script for its functions (it stops before its steps when sourced) and
# build venvs in throwaway folders; nothing outside them changes.

SYSTEM_PYTHON = Path("/usr/bin/python3")


def run_functions(script: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Run `script` in bash after sourcing setup_server.sh, with a fake python3 first on PATH."""
    # Sourced without this guard, the script would set up this machine for real.
    assert '[ "${BASH_SOURCE[0]}" = "$0" ] || return 0' in SCRIPT.read_text()
    fake = tmp_path / "fake-bin"
    fake.mkdir(exist_ok=True)
    # Stands for root's own python3 (a pyenv under /root): the script must never call it.
    (fake / "python3").write_text(f"#!/bin/sh\ntouch {tmp_path}/fake-python3-ran\nexit 1\n")
    (fake / "python3").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", **env}
    return subprocess.run(
        ["bash", "-c", f"source {SCRIPT}\n{script}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )


@pytest.fixture
def open_dir():
    """A folder every user can read, as /opt is (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="setup-server-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def fake_foreign_venv(path: Path) -> None:
    """A venv as another interpreter leaves it: pyvenv.cfg, and a python that is not ours."""
    (path / "bin").mkdir(parents=True)
    (path / "pyvenv.cfg").write_text("home = /root/.pyenv/versions/3.11.7/bin\n")
    (path / "bin" / "python").symlink_to("/bin/true")


def test_system_python_is_what_the_script_builds_from():
    text = SCRIPT.read_text()
    assert "SYSTEM_PYTHON=/usr/bin/python3\n" in text
    assert not re.search(r"^\s*python3 -m venv", text, re.MULTILINE)  # never PATH's python3
    assert SYSTEM_PYTHON.exists(), "Debian's python3 package (the script installs it)"


@pytest.mark.slow
def test_a_venv_is_built_from_the_system_python_not_the_first_on_path(open_dir, tmp_path):
    venv = open_dir / "workshop" / "venv"
    done = run_functions(f"check=0; make_venv {venv} json --no-index pip", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"setup_server: creating {venv}" in done.stdout.splitlines()
    assert os.path.realpath(venv / "bin" / "python") == os.path.realpath(SYSTEM_PYTHON)
    assert not (tmp_path / "fake-python3-ran").exists()
    again = run_functions(f"check=1; make_venv {venv} json; echo missing=$missing", tmp_path)
    assert again.stdout.splitlines() == ["missing=0"], again.stdout + again.stderr


@pytest.mark.slow
def test_a_venv_of_another_python_is_reported_then_rebuilt(open_dir, tmp_path):
    venv = open_dir / "venv"
    fake_foreign_venv(venv)
    checked = run_functions(f"check=1; make_venv {venv} json", tmp_path)
    assert checked.stdout.splitlines() == [
        f"setup_server: missing: {venv} built from /usr/bin/python3"
    ]
    assert (venv / "bin" / "python").readlink() == Path("/bin/true")  # --check changed nothing
    done = run_functions(f"check=0; make_venv {venv} json --no-index pip", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"setup_server: rebuilding {venv} from /usr/bin/python3"
    assert os.path.realpath(venv / "bin" / "python") == os.path.realpath(SYSTEM_PYTHON)


def test_a_folder_that_is_not_a_venv_is_never_deleted(open_dir, tmp_path):
    keep = open_dir / "venv" / "notes.txt"
    keep.parent.mkdir()
    keep.write_text("mine")
    done = run_functions(f"check=0; make_venv {keep.parent} json pip", tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"setup_server: error: {keep.parent} exists and is not a virtual environment: move it away"
    ]
    assert keep.read_text() == "mine"


@pytest.mark.root
@pytest.mark.slow
def test_a_venv_nobody_can_run_stops_the_set_up_with_one_line(tmp_path):
    # tmp_path is root's own (0700): user nobody cannot reach a venv inside it, just as no
    # team can reach an interpreter under /root.
    venv = tmp_path / "workshop" / "venv"
    done = run_functions(f"check=0; make_venv {venv} json --no-index pip", tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"setup_server: error: user nobody cannot run {venv}/bin/python -c 'import json':"
    )
    checked = run_functions(f"check=1; make_venv {venv} json", tmp_path)
    assert checked.stdout.splitlines() == [
        f"setup_server: missing: {venv} runnable by unprivileged users (import json)"
    ]


@pytest.mark.root
def test_nobody_can_run_a_venv_in_an_open_folder_but_not_a_missing_module(open_dir, tmp_path):
    venv = open_dir / "venv"
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True)
    ok = run_functions(f"venv_runs_unprivileged {venv} json && echo yes", tmp_path)
    assert ok.stdout.strip() == "yes", ok.stderr
    missing = run_functions(f"venv_runs_unprivileged {venv} no_such_module || echo no", tmp_path)
    assert missing.stdout.strip() == "no"


def test_the_closing_hint_is_the_instructor_guides_next_command():
    """setup_server.sh ends with the next command; the guide shows the same one."""
    hint = re.search(r"^echo \"  (sudo sh -c .*)\"$", SCRIPT.read_text(), re.MULTILINE)
    assert hint, "the closing hint"
    command = hint.group(1).replace("$ENV_FILE", "/etc/game-server/env")
    assert command in (SCRIPT.parent.parent / "docs" / "INSTRUCTOR.md").read_text()
    assert subprocess.run(["bash", "-n", "-c", command]).returncode == 0
