"""One timing per level: the guide's plans, the deck's speaker notes and the game file agree.

Each plan lives in three places a person reads: a table of docs/INSTRUCTOR.md ("The plan
(3 hours)" for the complete level, "The exercise level's plan (4 hours)"), the speaker
note of the deck's second slide, and the workshop game file (its phases fill the game's
slot, the same in both). These tests read all three and fail when they disagree; each
plan ends with a buffer, and the deck's set-up slide, one version a level, says the
set-up's minutes.
"""

import importlib.util
import re
from pathlib import Path

import pytest

from game_server.scenario.gamefile import builtin_game_path, load_game_file

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "INSTRUCTOR.md"
DECK = ROOT / "slides" / "deck.md"
# (heading of the guide's table, the notes' sentence, hours, the parts in order)
PLANS = {
    "complete": (
        "## The plan (3 hours)",
        "The plan (3 hours)",
        3,
        ["welcome", "talk", "set-up", "break", "game", "debrief", "wrap-up", "buffer"],
    ),
    "exercises": (
        "### The exercise level's plan (4 hours)",
        "The exercise level's plan (4 hours)",
        4,
        ["welcome", "talk", "set-up", "exercises", "break", "game", "debrief", "wrap-up"]
        + ["buffer"],
    ),
}
WORDS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60}

# "| 0:10 | the talk (40 min) | ..." and "| 1:30 | **the game** (60 min) | ..."
PLAN_ROW = re.compile(
    r"^\| (\d+):(\d\d) \| (?:\*\*)?(?:the )?([a-z-]+)(?:\*\*)? \((\d+) min\) \|", re.MULTILINE
)
# "| 20 min | population shift (12 min) | ..." and "| 0 min | warm-up (10 min, 2 req/s) | ..."
PHASE_ROW = re.compile(
    r"^\| (\d+) min \| ([a-z -]+?) \((\d+) min(?:, (\d+(?:\.\d+)?) req/s[^)]*)?\) \|", re.MULTILINE
)
# "welcome 10 min, talk 40 min, ..." in the speaker note
NOTE_PART = re.compile(r"\b([a-z-]+)\s+(\d+) min\b")


def load_build_slides():
    """scripts/build_slides.py as a module."""
    spec = importlib.util.spec_from_file_location(
        "build_slides", ROOT / "scripts" / "build_slides.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plan_table(level: str) -> str:
    """The text of the guide's plan table for `level` (up to the next heading)."""
    text = GUIDE.read_text(encoding="utf-8")
    heading = PLANS[level][0]
    assert heading in text, f"the guide has no {heading!r}"
    body = text.split(heading, 1)[1]
    return re.split(r"^#{2,3} ", body, maxsplit=1, flags=re.MULTILINE)[0]


def guide_plan(level: str = "complete") -> list[tuple[int, str, int]]:
    """(start minute, part, minutes) of each row of the guide's plan table for `level`."""
    rows = PLAN_ROW.findall(plan_table(level))
    return [(int(h) * 60 + int(m), part, int(n)) for h, m, part, n in rows]


def notes_plan(level: str = "complete") -> dict[str, int]:
    """The parts and minutes of a plan in the speaker notes ("The plan (3 hours): ...")."""
    text = DECK.read_text(encoding="utf-8")
    sentence = re.escape(PLANS[level][1])
    found = re.search(rf"^{sentence}:(.+?)\.$", text, flags=re.MULTILINE | re.DOTALL)
    assert found, f"the deck's speaker notes state the plan: '{PLANS[level][1]}: ... .'"
    return {part: int(n) for part, n in NOTE_PART.findall(found.group(1))}


def workshop_game():
    """The built-in workshop game file."""
    return load_game_file(builtin_game_path("workshop"))


@pytest.mark.parametrize("level", PLANS)
def test_each_plan_fills_its_hours_without_gaps_and_ends_with_a_buffer(level):
    """Each row starts where the one before ended; the day is the level's hours."""
    _, _, hours, parts = PLANS[level]
    plan = guide_plan(level)
    assert [part for _, part, _ in plan] == parts
    start = 0
    for begins, part, minutes in plan:
        assert begins == start, f"{part} starts at {begins} min, not at {start}"
        start += minutes
    assert start == hours * 60
    assert plan[-1][1] == "buffer" and plan[-1][2] >= 5


@pytest.mark.parametrize("level", PLANS)
def test_the_speaker_notes_give_the_guides_plan(level):
    """Talk, set-up, game, debrief (and the rest) take the same minutes in notes and guide."""
    assert notes_plan(level) == {part: minutes for _, part, minutes in guide_plan(level)}


def test_the_exercise_level_gets_the_time_its_exercises_take():
    """Set-up and exercises: the 55-80 minutes measured (docs/INSTRUCTOR.md says why)."""
    plan = {part: minutes for _, part, minutes in guide_plan("exercises")}
    assert plan["set-up"] + plan["exercises"] >= 80
    complete = {part: minutes for _, part, minutes in guide_plan("complete")}
    assert plan["game"] == complete["game"] and plan["talk"] == complete["talk"]


def test_the_set_up_slide_follows_the_level():
    """The deck's "How to play", one version a level, says the set-up's minutes."""
    build_slides = load_build_slides()
    deck = DECK.read_text(encoding="utf-8")
    for level, marker in (
        ("complete", build_slides.LEVEL_COMPLETE),
        ("exercises", build_slides.LEVEL_EXERCISES),
    ):
        (slide,) = [s for s in re.split(r"^-{3,4}$", deck, flags=re.MULTILINE) if marker in s]
        plan = {part: minutes for _, part, minutes in guide_plan(level)}
        said = re.search(
            r"^Your (\w+) minutes of set-up(?:, then (\w+) for the exercises)?:",
            slide,
            flags=re.MULTILINE,
        )
        assert said, slide
        assert WORDS[said.group(1)] == plan["set-up"]
        assert (WORDS[said.group(2)] if said.group(2) else None) == plan.get("exercises")
        assert ("pytest -x" in slide) == (level == "exercises")


def test_the_game_file_fills_the_games_slot():
    """The workshop game's phases add up to the game's minutes in both plans."""
    slots = {level: dict((p, m) for _, p, m in guide_plan(level))["game"] for level in PLANS}
    slot = slots["complete"]
    assert set(slots.values()) == {slot}
    assert workshop_game().duration == slot * 60
    header = (ROOT / "game_server/scenario/games/workshop.toml").read_text().splitlines()[0]
    assert header.startswith(f"# The workshop game: {slot} minutes"), header
    said = re.search(r"The built-in `workshop` game is (\d+) minutes", GUIDE.read_text())
    assert said and int(said.group(1)) == slot


def test_the_guides_phase_table_is_the_game_files_timeline():
    """What to say when: each phase's start, length and rate as the game file has them."""
    rows = PHASE_ROW.findall(GUIDE.read_text(encoding="utf-8"))
    phases = workshop_game().phases
    assert len(rows) == len(phases)
    start = 0.0
    for (at, name, minutes, rate), phase in zip(rows, phases, strict=True):
        assert (name, int(at), int(minutes)) == (phase.name, start / 60, phase.duration / 60)
        if rate:
            assert float(rate) == phase.rate, name
        start += phase.duration


@pytest.mark.parametrize("level", PLANS)
def test_the_freeze_falls_inside_the_game(level):
    """The guide's freeze ("55 min", "freeze at 2:25") is the same moment, before the end."""
    text = GUIDE.read_text(encoding="utf-8")
    plan = {part: (begins, minutes) for begins, part, minutes in guide_plan(level)}
    game_start, game_minutes = plan["game"]
    into = int(re.search(r"^\| (\d+) min \| \(freeze\)", text, flags=re.MULTILINE).group(1))
    clock = re.search(r"freeze at (\d+):(\d\d)", plan_table(level))
    assert int(clock.group(1)) * 60 + int(clock.group(2)) == game_start + into
    assert 0 < into < game_minutes


def test_the_guide_states_no_other_length_for_a_part():
    """The guide's introduction leaves the minutes to the plan (it once said "an hour")."""
    intro = GUIDE.read_text(encoding="utf-8").split("## The plan", 1)[0]
    assert not re.search(r"\b(an? hour|half an hour|\d+[- ]minutes?)\b", intro), intro


def test_the_talk_fits_its_minutes():
    """The short talk has at most one slide a minute; the speaker view paces those minutes."""
    build_slides = load_build_slides()
    deck = DECK.read_text(encoding="utf-8")
    slides = [
        slide
        for column in re.split(build_slides.SEPARATOR, deck, flags=re.MULTILINE)
        for slide in re.split(build_slides.SEPARATOR_VERTICAL, column, flags=re.MULTILINE)
    ]
    talk = [s for s in slides if build_slides.OPTIONAL not in s]
    talk = [s for s in talk if build_slides.LEVEL_EXERCISES not in s]  # one version a level
    minutes = notes_plan()["talk"]
    assert len(talk) <= minutes < len(slides), f"{len(talk)} slides in the talk"
    assert build_slides.talk_minutes(deck) == minutes
    # Every slide marker is the one the build knows, so none is skipped by a typo.
    markers = re.findall(r"<!-- \.slide:[^>]*-->", deck)
    assert markers and set(markers) == build_slides.MARKERS
