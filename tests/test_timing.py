"""One timing for the workshop: the guide's plan, the deck's speaker notes and the game file agree.

The plan lives in three places a person reads: the table "The plan (3 hours)" of
docs/INSTRUCTOR.md, the speaker note of the deck's second slide, and the workshop game file
(its phases fill the game's slot). These tests read all three and fail when they disagree.
"""

import importlib.util
import re
from pathlib import Path

from game_server.scenario.gamefile import builtin_game_path, load_game_file

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "INSTRUCTOR.md"
DECK = ROOT / "slides" / "deck.md"
WORKSHOP_MINUTES = 180
PARTS = ["welcome", "talk", "set-up", "break", "game", "debrief", "wrap-up"]

# "| 0:10 | the talk (40 min) | ..." and "| 1:30 | **the game** (60 min) | ..."
PLAN_ROW = re.compile(
    r"^\| (\d+):(\d\d) \| (?:\*\*)?(?:the )?([a-z-]+)(?:\*\*)? \((\d+) min\) \|", re.MULTILINE
)
# "| 20 min | population shift (12 min) | ..." and "| 0 min | warm-up (10 min, 2 req/s) | ..."
PHASE_ROW = re.compile(
    r"^\| (\d+) min \| ([a-z -]+?) \((\d+) min(?:, (\d+(?:\.\d+)?) req/s[^)]*)?\) \|", re.MULTILINE
)
# "welcome 10 min, talk 40 min, ..." in the speaker note
NOTE_PART = re.compile(r"\b([a-z-]+) (\d+) min\b")


def load_build_slides():
    """scripts/build_slides.py as a module."""
    spec = importlib.util.spec_from_file_location(
        "build_slides", ROOT / "scripts" / "build_slides.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def guide_plan() -> list[tuple[int, str, int]]:
    """(start minute, part, minutes) of each row of the guide's plan table."""
    text = GUIDE.read_text(encoding="utf-8")
    return [(int(h) * 60 + int(m), part, int(n)) for h, m, part, n in PLAN_ROW.findall(text)]


def notes_plan() -> dict[str, int]:
    """The parts and minutes of the plan in the speaker notes ("The plan (3 hours): ...")."""
    text = DECK.read_text(encoding="utf-8")
    found = re.search(r"^The plan \(3 hours\):(.+?)\.$", text, flags=re.MULTILINE | re.DOTALL)
    assert found, "the deck's speaker notes state the plan: 'The plan (3 hours): ... .'"
    return {part: int(n) for part, n in NOTE_PART.findall(found.group(1))}


def workshop_game():
    """The built-in workshop game file."""
    return load_game_file(builtin_game_path("workshop"))


def test_the_guides_plan_fills_three_hours_without_gaps():
    """Each row starts where the one before ended, and the day is the workshop's 3 hours."""
    plan = guide_plan()
    assert [part for _, part, _ in plan] == PARTS
    start = 0
    for begins, part, minutes in plan:
        assert begins == start, f"{part} starts at {begins} min, not at {start}"
        start += minutes
    assert start == WORKSHOP_MINUTES


def test_the_speaker_notes_give_the_guides_plan():
    """Talk, set-up, game, debrief (and the rest) take the same minutes in notes and guide."""
    assert notes_plan() == {part: minutes for _, part, minutes in guide_plan()}


def test_the_game_file_fills_the_games_slot():
    """The workshop game's phases add up to the game's minutes in the plan."""
    slot = {part: minutes for _, part, minutes in guide_plan()}["game"]
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


def test_the_freeze_falls_inside_the_game():
    """The guide's freeze ("55 min", "freeze at 2:25") is the same moment, before the end."""
    text = GUIDE.read_text(encoding="utf-8")
    plan = {part: (begins, minutes) for begins, part, minutes in guide_plan()}
    game_start, game_minutes = plan["game"]
    into = int(re.search(r"^\| (\d+) min \| \(freeze\)", text, flags=re.MULTILINE).group(1))
    clock = re.search(r"freeze at (\d+):(\d\d)", text)
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
    minutes = notes_plan()["talk"]
    assert len(talk) <= minutes < len(slides), f"{len(talk)} slides in the talk"
    assert build_slides.talk_minutes(deck) == minutes
    # Every slide marker is the one the build knows, so none is skipped by a typo.
    markers = re.findall(r"<!-- \.slide:[^>]*-->", deck)
    assert markers and set(markers) == {build_slides.OPTIONAL}
