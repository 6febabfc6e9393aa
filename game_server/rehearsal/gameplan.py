"""The rehearsal's game: the workshop's whole game, every phase, compressed in time.

Each phase keeps its kind, rate, burst and settings (the peak is the peak), only shorter:
the durations and the label delay scaled so the whole game lasts about `minutes`, no
phase under `MIN_PHASE` seconds, and no phase of a kind in `floors` under its floor (the
phases the teams retrain in: in the real game, 12 minutes leave room for the retraining; a
compressed one would push it into the next phase, the peak).
"""

import json
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

from game_server.scenario.gamekeys import parse_duration

WORKSHOP = Path(__file__).resolve().parents[1] / "scenario" / "games" / "workshop.toml"
MIN_PHASE = 20.0


def _value(value: Any) -> str:
    """A TOML value (strings, numbers, booleans and lists of them; JSON's forms agree)."""
    return json.dumps(value)


def _table(name: str, table: dict[str, Any]) -> list[str]:
    lines, subtables = [name], []
    for key, value in table.items():
        if isinstance(value, dict):
            subtables.append((key, value))
        else:
            lines.append(f"{key} = {_value(value)}")
    for key, value in subtables:
        lines += _table(f"[{name.strip('[]')}.{key}]", value)
    return lines


class Compressed(NamedTuple):
    """A compressed game: its game file's text, and its phases with their seconds."""

    text: str
    phases: list[dict[str, Any]]


def compressed(
    minutes: float, source: Path = WORKSHOP, floors: dict[str, float] | None = None
) -> Compressed:
    """(the game file's text, its phases with their seconds) for a game of about `minutes`;
    a phase whose kind is in `floors` lasts at least its floor."""
    doc = tomllib.loads(source.read_text())
    phases = doc["phases"]
    total = sum(parse_duration(p["duration"]) or 0.0 for p in phases)
    factor = minutes * 60 / total
    game = dict(doc["game"], name=f"rehearsal: {doc['game']['name']}")
    game["label_delay"] = max(3.0, round(float(game.get("label_delay", 60)) * factor, 1))
    lines = _table("[game]", game)
    for phase in phases:
        seconds = max(MIN_PHASE, round((parse_duration(phase["duration"]) or 0.0) * factor, 1))
        seconds = max(seconds, round((floors or {}).get(phase.get("kind", ""), 0.0), 1))
        phase["duration"] = seconds
        lines += [""] + _table("[[phases]]", phase)
    return Compressed("\n".join(lines) + "\n", phases)


def game_settings(path: Path) -> dict[str, Any]:
    """The `[game]` table of a game file."""
    return dict(tomllib.loads(path.read_text())["game"])
