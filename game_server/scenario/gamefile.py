"""Loading and validating a TOML game file: the game's settings and its ordered phases.

The keys are declared in `gamekeys`; `_Reader` checks a file against them and names the
line of every problem. A loaded file is a `GameFile` of `Settings` and `Phase`s, with
the shift and drift in force.
"""

import logging
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from game_server.scenario.gamekeys import (
    DRIFT_KEYS,
    GAME_KEYS,
    KIND_DESCRIPTIONS,
    PHASE_KEYS,
    SHIFT_KEYS,
    Key,
    parse_duration,
)
from game_server.scenario.population import Drift, Shift

log = logging.getLogger(__name__)

GAMES_DIR = Path(__file__).with_name("games")


class GameFileError(ValueError):
    """A game file that cannot be used; the message is one line naming file, key and line."""


class _Reader:
    """Validates one file's parsed TOML against the key declarations."""

    def __init__(self, path: Path, text: str):
        self.path = path
        self.lines = text.splitlines()

    def fail(self, where: tuple, key: str | None, problem: str) -> NoReturn:
        """Raise the one-line error for `key` in the table `where`."""
        line = self.line_of(where, key)
        names = [f"phases[{w + 1}]" if isinstance(w, int) else w for w in (*where, key)]
        dotted = ".".join(n for n in names if n and n != "phases") if where else key
        raise GameFileError(f"{self.path}: line {line}: {dotted}: {problem}")

    def line_of(self, where: tuple, key: str | None) -> int:
        """Line of `key` in table `where` (e.g. ("phases", 0, "shift")), found by scanning."""
        target = ".".join(w for w in where if isinstance(w, str))
        index = next((w for w in where if isinstance(w, int)), None)
        section, phase, header, fallback = "", -1, None, None
        key_re = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=") if key else None
        loose_re = re.compile(rf"\b{re.escape(key)}\s*=") if key else None
        for no, raw in enumerate(self.lines, 1):
            line = raw.split("#", 1)[0].strip()
            head = re.match(r"^\[\[?\s*([\w.\-\"]+)\s*\]\]?", line)
            if head:
                section = head[1].replace('"', "")
                phase += line.startswith("[[") and section == "phases"
                if key and not where and section.split(".")[0] == key:
                    return no  # an unknown top-level table
                if section == target and (index is None or phase == index):
                    header = header or no
                continue
            inside = section == target and (index is None or index == phase)
            if inside and key_re and key_re.match(line):
                return no
            in_parent = section.split(".")[0] == target.split(".")[0]
            if (
                loose_re
                and in_parent
                and (index is None or index == phase)
                and loose_re.search(line)
            ):
                fallback = fallback or no
        return fallback or header or 1

    def table(self, raw: dict, keys: tuple[Key, ...], where: tuple) -> dict:
        """Check the keys and types of one table; return its values with defaults filled in."""
        known = {k.name: k for k in keys}
        for name in raw:
            if name not in known:
                self.fail(where, name, f"unknown key (known: {', '.join(known)})")
        out = {}
        for key in keys:
            if key.name not in raw:
                out[key.name] = key.default
                continue
            out[key.name] = self.value(key, raw[key.name], where)
        return out

    def value(self, key: Key, value: Any, where: tuple) -> Any:
        """Check one value's type and range; return it in its Python form."""
        expected = {
            "str": "a string",
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "strings": "a list of strings",
            "duration": 'seconds or a string like "10m"',
            "table": "a table",
        }[key.type]
        ok = {
            "str": isinstance(value, str),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, int | float) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "strings": isinstance(value, list) and all(isinstance(v, str) for v in value),
            "duration": parse_duration(value) is not None,
            "table": isinstance(value, dict),
        }[key.type]
        if not ok:
            self.fail(where, key.name, f"must be {expected}, got {value!r}")
        if key.type == "float":
            value = float(value)
        elif key.type == "duration":
            value = parse_duration(value)
        elif key.type == "strings":
            value = tuple(value)
        if key.check and (problem := key.check(value)):
            self.fail(where, key.name, problem)
        return value


@dataclass(frozen=True)
class Settings:
    """The [game] table."""

    name: str
    seed: int
    label_delay: float
    timeout: float
    max_body_bytes: int
    allowed_hosts: tuple[str, ...]
    persist_changes: bool
    data_seed: int
    data_rows: int
    pool: str | None  # absolute path of the own-data pool, or None: the generator
    training_data: str | None  # absolute path of the own-data training CSV
    label_column: str


@dataclass(frozen=True)
class Phase:
    """One [[phases]] entry; `shift` and `drift` are the ones in force (persistence applied)."""

    name: str
    kind: str
    duration: float
    rate: float
    burst: int
    description: str
    oddity_share: float
    oddities: tuple[str, ...]
    shift: Shift
    drift: Drift

    @property
    def expected_rounds(self) -> float:
        """How many rounds (applicants) this phase sends on average."""
        return self.rate * self.duration


@dataclass(frozen=True)
class GameFile:
    """A loaded, valid game file."""

    settings: Settings
    phases: tuple[Phase, ...]
    path: str = ""

    @property
    def duration(self) -> float:
        """Length of the whole game in seconds."""
        return sum(p.duration for p in self.phases)


def builtin_game_path(name: str) -> Path:
    """The path of a game file shipped with the package ("workshop" or "demo")."""
    path = GAMES_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in GAMES_DIR.glob("*.toml")))
        raise GameFileError(f"no builtin game {name!r} (known: {known})")
    return path


def game_path(file: str) -> Path:
    """A game file named on a command line: an existing path, else a builtin game's name."""
    return Path(file) if Path(file).exists() else builtin_game_path(file)


def load_game_file(path: str | Path) -> GameFile:
    """Read and validate a game file; raise GameFileError with a one-line message."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GameFileError(f"{path}: cannot read: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GameFileError(f"{path}: invalid TOML: {exc}") from None
    reader = _Reader(path, text)
    for name in raw:
        if name not in ("game", "phases"):
            reader.fail((), name, "unknown table (known: game, phases)")
    settings = _settings(reader, raw.get("game", {}), path)
    phases = _phases(reader, raw.get("phases"), settings)
    game_file = GameFile(settings=settings, phases=phases, path=str(path))
    log.info(
        "loaded game file path=%s phases=%d duration=%.0fs", path, len(phases), game_file.duration
    )
    return game_file


def _settings(reader: _Reader, raw: object, path: Path) -> Settings:
    """The [game] table, own-data paths resolved against the game file's folder."""
    if not isinstance(raw, dict):
        reader.fail((), "game", "must be a table [game]")
    game = reader.table(raw, GAME_KEYS, ("game",))
    for name in ("pool", "training_data"):
        if game[name] is not None:
            game[name] = str((path.parent / game[name]).resolve())
    if game["pool"] and not game["training_data"]:
        game["training_data"] = str(Path(game["pool"]).with_name("train_data.csv"))
    return Settings(**game)


def _phases(reader: _Reader, raw_phases: object, settings: Settings) -> tuple[Phase, ...]:
    """The [[phases]] in order; a phase without shift or drift keeps the previous one's
    when `persist_changes` is on, and goes back to none otherwise."""
    if not isinstance(raw_phases, list) or not raw_phases:
        reader.fail((), "phases", "the file needs at least one [[phases]] table")
    phases, shift, drift = [], Shift(), Drift()
    for i, raw_phase in enumerate(raw_phases):  # a list: checked above
        where = ("phases", i)
        values = reader.table(raw_phase, PHASE_KEYS, where)
        for required in ("kind", "duration"):
            if values[required] is None:
                reader.fail(where, required, "missing (required in every phase)")
        if values["shift"] is not None:
            shift = Shift(**reader.table(values["shift"], SHIFT_KEYS, (*where, "shift")))
        elif not settings.persist_changes:
            shift = Shift()
        if values["drift"] is not None:
            drift = Drift(**reader.table(values["drift"], DRIFT_KEYS, (*where, "drift")))
        elif not settings.persist_changes:
            drift = Drift()
        values.update(
            name=values["name"] or values["kind"],
            description=values["description"] or KIND_DESCRIPTIONS[values["kind"]],
            shift=shift,
            drift=drift,
        )
        phases.append(Phase(**values))
    return tuple(phases)
