"""The rehearsal's parts that need no server: the day's scripts, the game, the verdict."""

import tomllib
from pathlib import Path

import pytest

from game_server.common import sizing
from game_server.rehearsal import gameplan, readme, verdict
from game_server.scenario import gamefile


def test_the_day_follows_the_readme_and_retrains_during_the_game():
    """Before: train with the notebook, API in tmux, self-check; during: feedback, retrain."""
    before, during = readme.day_scripts()
    order = ["jupyter lab", "nbconvert", "tmux send-keys -t api 'python main.py'", "selfcheck.py"]
    positions = [before.index(step) for step in order]
    assert positions == sorted(positions), before
    assert "feedback.py" not in before and "flask --app main run" not in before
    assert before.index("tmux new -d -s jupyter") < before.index("nbconvert")
    assert during.index("feedback.py") < during.index("nbconvert") < during.index("C-c")


def test_a_readme_without_the_feedback_step_is_refused():
    """The rehearsal cannot live a day the README no longer describes: one clear error."""
    with pytest.raises(ValueError, match="feedback"):
        readme.day_scripts("```bash\npython main.py\n```\n")


def test_the_compressed_game_keeps_every_phase_and_the_peak(tmp_path):
    """Every phase of the workshop game, in order, shorter; the peak's rate and burst kept."""
    text, phases = gameplan.compressed(5)
    path = tmp_path / "game.toml"
    path.write_text(text)
    game = gamefile.load_game_file(path)
    workshop = tomllib.loads(gameplan.WORKSHOP.read_text())["phases"]
    assert [p.kind for p in game.phases] == [p["kind"] for p in workshop]
    peak = next(p for p in game.phases if p.kind == "peak")
    assert (peak.rate, peak.burst) == (30.0, 20)
    total = sum(float(p["duration"]) for p in phases)
    assert 4 * 60 <= total <= 6 * 60 and all(p.duration >= gameplan.MIN_PHASE for p in game.phases)


def test_the_phases_the_teams_retrain_in_leave_room_for_the_retraining():
    """A floor for a kind lengthens its phases only: the retraining of 15 teams ends before
    the peak instead of running into it."""
    _, plain = gameplan.compressed(4)
    _, floored = gameplan.compressed(4, floors={"shift": 150.0, "drift": 150.0})
    for before, after in zip(plain, floored, strict=True):
        if before["kind"] in ("shift", "drift"):
            assert after["duration"] == max(150.0, before["duration"])
        else:
            assert after["duration"] == before["duration"]


def _phase(kind: str, failed: int, p95: float, team: float = 0.5) -> verdict.Phase:
    return verdict.Phase(kind, kind, 1000, failed, p95, 0.5, 0.8, team, 400.0, 1.5, 0.1)


def test_the_verdict_says_held_or_not_per_phase_and_what_to_change():
    """A peak with 5 % failures is not held; the estimate and the advice follow the cost."""
    good = [_phase("warmup", 0, 10.0), _phase("peak", 0, 40.0)]
    said = verdict.report(2, "complete", good, 1.0, 8000.0, [])
    lines = said.lines
    assert said.held and "HELD the peak" in lines[0] and any("estimate" in line for line in lines)
    assert sum(1 for line in lines if line.startswith("  warmup") or line.startswith("  peak")) == 2
    bad = [_phase("warmup", 0, 10.0), _phase("peak", 50, 900.0)]
    said = verdict.report(2, "complete", bad, 1.0, 8000.0, [])
    assert not said.held and "did NOT hold" in said.lines[0] and "rent more" in said.lines[-1]
    # A failed peak with costs that would fit many more: the estimate stays under the teams.
    said = verdict.report(15, "complete", bad, 1.0, 8000.0, [])
    text = "\n".join(said.lines)
    assert "fewer than 15 teams" in text and "at most 14 fit here" in said.lines[-1], text
    assert "would hold about" not in text
    said = verdict.report(2, "complete", good, 1.0, 8000.0, ["u: morning: exit 1: boom"])
    lines = said.lines
    assert not said.held and "bot: u: morning" in "\n".join(lines) and "fix that first" in lines[-1]


def test_capacity_divides_the_usable_machine_by_the_cost_per_team():
    """Twice the measured cost per team halves the estimate; a cost under what the peak's
    bursts need (sizing.BURST) counts as that."""
    cheap = verdict.capacity(4, _phase("peak", 0, 10.0, team=1.5), 8000.0)
    dear = verdict.capacity(4, _phase("peak", 0, 10.0, team=3.1), 8000.0)
    tiny = verdict.capacity(4, _phase("peak", 0, 10.0, team=0.01), 8000.0)
    assert tiny.cores_per_team == pytest.approx(sizing.BURST.cores_per_team)
    assert cheap.by_cpu == pytest.approx(2 * dear.by_cpu, abs=1)
    assert cheap.cores_per_team * 2 == pytest.approx(dear.cores_per_team)
    assert Path(gameplan.WORKSHOP).is_file()
