"""How big a server: the sizing table's rule, and `doctor --teams N`'s warning."""

from click.testing import CliRunner

from game_server import sizing
from game_server.cli import main


def test_more_teams_need_more_cores_and_memory():
    """The table grows with the teams, and never asks for less than 2 cores."""
    rows = [sizing.needed(n) for n in sizing.TEAMS]
    assert rows == sorted(rows) and rows[0] < rows[-1] and min(r[0] for r in rows) >= 2
    assert sizing.too_small(10, *sizing.needed(10)) is None
    cores, gb = sizing.needed(50)
    assert "50 teams" in (sizing.too_small(50, cores - 1, gb) or "")


def test_doctor_warns_when_this_server_is_smaller_than_the_table(tmp_path):
    """`doctor --teams N`: a warning for a room no server holds, none for one team."""
    db = f"sqlite:///{tmp_path / 'game.sqlite'}"
    many = CliRunner().invoke(main, ["--db", db, "doctor", "--teams", "10000"])
    assert "doctor: warning: for 10000 teams the sizing table" in many.output
    one = CliRunner().invoke(main, ["--db", db, "doctor", "--teams", "1"])
    assert "large enough for 1 teams" in one.output and "warning: for" not in one.output
