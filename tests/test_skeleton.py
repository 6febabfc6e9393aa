"""The project's frame: the CLI, logging, and the skip-or-fail rule for components."""

import io
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

from game_server.cli.main import main
from game_server.common.logs import configure_logging


def test_help_lists_command_groups():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for group in ("data", "game", "teams", "control", "users", "demo"):
        assert f"\n  {group} " in result.output


def test_python_dash_m_runs_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "game_server", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "Usage:" in out.stdout


def test_bad_log_level_is_a_one_line_error():
    result = CliRunner().invoke(main, ["--log-level", "LOUD", "data", "--help"])
    assert result.exit_code == 2
    assert "Invalid value for '--log-level'" in result.output


def test_log_records_are_one_line_with_time_level_and_logger():
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    log = logging.getLogger("game_server.test")
    try:
        raise ValueError("first\nsecond")
    except ValueError:
        log.exception("scoring failed for team=%s", "red")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    date, clock, level, logger, *message = lines[0].split(" ")
    assert level == "ERROR" and logger == "game_server.test"
    assert "scoring failed for team=red" in lines[0] and "ValueError: first | second" in lines[0]


PG_PROBE = textwrap.dedent(
    """
    import pytest

    @pytest.mark.postgres
    def test_needs_pg():
        pass

    def test_plain():
        pass
    """
)


def _run_probe(tmp_path, ci: str | None):
    """Run a tiny suite with PostgreSQL pointed at a closed port."""
    (tmp_path / "test_probe.py").write_text(PG_PROBE)
    conftest = Path(__file__).with_name("conftest.py")
    (tmp_path / "conftest.py").write_text(conftest.read_text())
    env = dict(os.environ, GAME_TEST_PG_URL="postgresql+psycopg://nobody@127.0.0.1:9/none")
    env.pop("CI", None)
    if ci is not None:
        env["CI"] = ci
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q", "-m", ""]
    return subprocess.run(
        args + ["--strict-markers", "-o", "markers=postgres", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )


def test_missing_postgres_is_skipped_outside_ci(tmp_path):
    out = _run_probe(tmp_path, ci=None)
    assert out.returncode == 0, out.stdout
    assert "1 passed, 1 skipped" in out.stdout
    assert "PostgreSQL is not available" in out.stdout


def test_missing_postgres_fails_in_ci(tmp_path):
    out = _run_probe(tmp_path, ci="true")
    assert out.returncode == 1, out.stdout
    assert "PostgreSQL is not available" in out.stdout
    assert "1 passed" in out.stdout
