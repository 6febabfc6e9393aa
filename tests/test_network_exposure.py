"""No token or session crosses the workshop's network in clear (issue 15): loopback by default."""

import re
from pathlib import Path

from click.testing import CliRunner

from game_server.cli.main import main

REPO = Path(__file__).resolve().parents[1]


def test_the_server_units_game_listens_on_loopback_only():
    """setup_server.sh's systemd unit runs the game on 127.0.0.1, as its own user."""
    script = (REPO / "scripts" / "setup_server.sh").read_text()
    exec_start = re.search(r"^ExecStart=.*$", script, re.M)[0]
    assert "--host 127.0.0.1" in exec_start and "0.0.0.0" not in exec_start
    assert "User=$SERVICE_USER" in script


def test_run_and_web_default_to_loopback():
    """`game-server run` and `game-server web` listen on 127.0.0.1 unless told otherwise."""
    for command in ("run", "web"):
        help_text = CliRunner().invoke(main, [command, "--help"]).output
        assert re.search(r"--host TEXT.*\[default: 127\.0\.0\.1\]", help_text, re.S), help_text


def test_the_guides_reach_the_pages_through_a_tunnel():
    """The participant and instructor guides open the pages through an SSH tunnel."""
    for guide in ("participant_starter/README.md", "docs/INSTRUCTOR.md"):
        text = (REPO / guide).read_text()
        assert "-L 8000:localhost:8000" in text, guide
        assert "http://SERVER:8000" not in text, guide
