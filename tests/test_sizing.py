"""How big a server: the sizing table's rule, and `doctor --teams N`'s warning."""

import re
from pathlib import Path

from click.testing import CliRunner

from game_server.cli.main import main
from game_server.common import sizing


def test_more_teams_need_more_cores_and_memory():
    """The table grows with the teams, and never asks for less than 2 cores."""
    rows = [sizing.needed(n) for n in sizing.TEAMS]
    assert rows == sorted(rows) and rows[0] < rows[-1] and min(r[0] for r in rows) >= 2
    assert sizing.too_small(10, *sizing.needed(10)) is None
    cores, gb = sizing.needed(50)
    assert "50 teams" in (sizing.too_small(50, cores - 1, gb) or "")


def test_a_team_costs_at_least_what_the_peaks_bursts_need():
    """A rehearsal's few teams average less than the bursts need: the larger one counts."""
    cheap = sizing.Cost(cores=0.01, mb=500)
    cores, _ = sizing.needed(40, cost=cheap)
    assert cores == -(-40 * sizing.BURST.cores_per_team // sizing.USABLE)  # ceil
    dear = sizing.Cost(cores=1.0, mb=500)
    assert sizing.needed(40, cost=dear)[0] == 50  # 40 x 1.0 over 80 %


def test_the_guides_table_is_the_one_sizing_renders():
    guide = (Path(__file__).resolve().parents[1] / "docs" / "INSTRUCTOR.md").read_text()
    found = re.search(
        r"<!-- sizing table: make bench-rehearsal -->\n(.*?)<!-- /sizing", guide, re.S
    )
    assert found and found[1] == sizing.table()


def test_doctor_warns_when_this_server_is_smaller_than_the_table(tmp_path):
    """`doctor --teams N`: a warning for a room no server holds, none for one team."""
    db = f"sqlite:///{tmp_path / 'game.sqlite'}"
    many = CliRunner().invoke(main, ["--db", db, "doctor", "--teams", "10000"])
    assert "doctor: warning: for 10000 teams the sizing table" in many.output
    one = CliRunner().invoke(main, ["--db", db, "doctor", "--teams", "1"])
    assert "large enough for 1 teams" in one.output and "warning: for" not in one.output
