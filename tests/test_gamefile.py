"""Game files: the builtin games, persistence of changes, one-line errors, complete docs."""

import dataclasses
import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from game_server.cli.main import main
from game_server.scenario import gamefile, gamekeys
from game_server.scenario.gamefile import GameFileError, builtin_game_path, load_game_file

ROOT = Path(__file__).resolve().parents[1]
GOOD = """\
[game]
name = "test"
seed = 3

[[phases]]
kind = "warmup"
duration = 60
rate = 2.0

[[phases]]
kind = "shift"
duration = "1m30s"
rate = 4

[phases.shift]
age_delta = -5.0

[[phases]]
kind = "drift"
duration = "2m"

[phases.drift]
region = "south"
region_logit = 1.0
"""


def write(tmp_path, text: str) -> Path:
    """A game file with `text` in a temporary directory."""
    path = tmp_path / "game.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_builtin_games_have_the_five_phases_and_sensible_lengths():
    workshop = load_game_file(builtin_game_path("workshop"))
    demo = load_game_file(builtin_game_path("demo"))
    for game in (workshop, demo):
        assert [p.kind for p in game.phases] == list(gamekeys.PHASE_KINDS)
        peak = next(p for p in game.phases if p.kind == "peak")
        assert peak.rate >= 3 * max(p.rate for p in game.phases if p.kind != "peak")
        assert peak.burst > 1
        assert next(p for p in game.phases if p.kind == "messy").oddity_share >= 0.2
    assert 50 * 60 <= workshop.duration <= 70 * 60
    assert 4 * 60 <= demo.duration <= 6 * 60 and demo.settings.label_delay <= 15
    with pytest.raises(GameFileError, match="no builtin game 'nope'"):
        builtin_game_path("nope")


def test_durations_defaults_and_persisting_changes(tmp_path):
    game = load_game_file(write(tmp_path, GOOD))
    assert [p.duration for p in game.phases] == [60.0, 90.0, 120.0]
    assert game.duration == 270.0
    assert [p.name for p in game.phases] == ["warmup", "shift", "drift"]
    assert game.phases[2].rate == 2.0 and game.phases[0].burst == 1
    assert game.phases[0].description == gamekeys.KIND_DESCRIPTIONS["warmup"]
    assert game.settings.timeout == 1.0 and game.settings.label_delay == 60.0
    assert not game.phases[0].shift.active
    # the shift declared in phase 2 stays in force in phase 3, where the drift starts
    assert game.phases[2].shift.age_delta == -5.0 and game.phases[2].drift.region == "south"
    assert not game.phases[1].drift.active

    reset = load_game_file(write(tmp_path, GOOD.replace("seed = 3", "persist_changes = false")))
    assert not reset.phases[2].shift.active and reset.phases[2].drift.active


def test_expected_rounds_are_rate_times_duration(tmp_path):
    game = load_game_file(write(tmp_path, GOOD))
    assert [p.expected_rounds for p in game.phases] == [120.0, 360.0, 240.0]
    result = CliRunner().invoke(main, ["game", "check", str(tmp_path / "game.toml")])
    assert result.exit_code == 0, result.output
    assert "720 rounds" in result.output and "with 20 teams: 14,400 requests" in result.output
    lines = result.output.splitlines()
    shift_row = next(line for line in lines if line.split()[:3] == ["2", "shift", "shift"])
    assert "1:00" in shift_row and "1:30" in shift_row and "age -5 y" in shift_row


@pytest.mark.parametrize(
    ("change", "line", "pattern"),
    [
        (("rate = 4", "rat = 4"), 13, r"phases\[2\]\.rat: unknown key"),
        (("seed = 3", 'seed = "three"'), 3, r"game\.seed: must be an integer, got 'three'"),
        (("duration = 60", "duration = -60"), 7, r"phases\[1\]\.duration: must be > 0"),
        (('kind = "drift"', 'kind = "storm"'), 19, r"phases\[3\]\.kind: 'storm' is not one of"),
        (("age_delta = -5.0", "age_shift = -5.0"), 16, r"phases\[2\]\.shift\.age_shift: unknown"),
        (('duration = "2m"', 'duration = "soon"'), 20, r"phases\[3\]\.duration: must be seconds"),
        (("[game]", "[gmae]"), 1, r"gmae: unknown table"),
        (("region_logit = 1.0", "region_logit = true"), 24, r"drift\.region_logit: must be a"),
        (('kind = "warmup"\n', ""), 5, r"phases\[1\]\.kind: missing"),
        (('region = "south"', 'employment = "pirate"'), 23, r"'pirate' is not one of employed,"),
    ],
)
def test_bad_files_get_one_line_errors_naming_key_and_line(tmp_path, change, line, pattern):
    text = GOOD.replace(*change)
    assert text != GOOD
    path = write(tmp_path, text)
    with pytest.raises(GameFileError) as err:
        load_game_file(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: line {line}: "), message
    assert re.search(pattern, message), message
    result = CliRunner().invoke(main, ["game", "check", str(path)])
    assert result.exit_code == 1 and result.output.strip() == f"Error: {message}"


def test_unreadable_and_invalid_toml_and_no_phases(tmp_path):
    for text, expected in [
        ("[game\nseed = 1", "invalid TOML"),
        ("[game]\nseed = 1\n", "phases: the file needs at least one [[phases]] table"),
    ]:
        with pytest.raises(GameFileError, match=re.escape(expected)):
            load_game_file(write(tmp_path, text))
    with pytest.raises(GameFileError, match="cannot read"):
        load_game_file(tmp_path / "missing.toml")


def test_every_key_is_declared_and_documented():
    # the declarations cover every field of the dataclasses, and nothing else
    assert {k.name for k in gamekeys.GAME_KEYS} == set(gamekeys.field_names(gamefile.Settings))
    phase_fields = set(gamekeys.field_names(gamefile.Phase))
    assert {k.name for k in gamekeys.PHASE_KEYS} == phase_fields
    assert {k.name for k in gamekeys.SHIFT_KEYS} == {
        f.name for f in dataclasses.fields(gamefile.Shift)
    }
    assert {k.name for k in gamekeys.DRIFT_KEYS} == {
        f.name for f in dataclasses.fields(gamefile.Drift)
    }
    docs = (ROOT / "docs" / "GAMEFILE.md").read_text()
    assert gamekeys.settings_markdown() in docs, "run: game-server game keys > to update"
