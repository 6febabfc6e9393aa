"""Loading and validating a TOML game file: the game's settings and its ordered phases.

Every key a game file may hold is declared once below (`GAME_KEYS`, `PHASE_KEYS`,
`SHIFT_KEYS`, `DRIFT_KEYS`); the loader, `game-server game check` and docs/GAMEFILE.md
all read these declarations, and a test checks the docs list every one of them.
"""

import dataclasses
import logging
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from game_server.scenario.oddities import KINDS as ODDITY_KINDS
from game_server.scenario.population import (
    DEFAULT_DATA_SEED,
    DEFAULT_ROWS,
    EMPLOYMENT,
    LABEL,
    Drift,
    Shift,
)

log = logging.getLogger(__name__)

GAMES_DIR = Path(__file__).with_name("games")
PHASE_KINDS = ("warmup", "messy", "shift", "peak", "drift")
KIND_DESCRIPTIONS = {
    "warmup": "Warm-up: clean requests from the training population. Get your API up.",
    "messy": "Messy input: some requests carry missing fields, nulls, strings, odd values.",
    "shift": "Population shift: younger applicants, larger loans, a new region.",
    "peak": "Peak traffic: many more requests, in concurrent bursts.",
    "drift": "The world changes: what predicts default is not what it was.",
}


class GameFileError(ValueError):
    """A game file that cannot be used; the message is one line naming file, key and line."""


@dataclass(frozen=True)
class Key:
    """One key a game file may hold: its name, type, default and meaning."""

    name: str
    type: str  # str | int | float | bool | strings | duration | table
    default: object
    help: str
    check: Callable[[object], str | None] | None = None  # returns a problem, or None


def _at_least(low: float, strict: bool = False) -> Callable[[object], str | None]:
    """A check that a number is >= low (or > low when strict)."""

    def check(value):
        bad = value <= low if strict else value < low
        return f"must be {'>' if strict else '>='} {low:g}, got {value!r}" if bad else None

    return check


def _share(value) -> str | None:
    """A check that a number is a share between 0 and 1."""
    return None if 0 <= value <= 1 else f"must be between 0 and 1, got {value!r}"


def _one_of(choices: tuple[str, ...]) -> Callable[[object], str | None]:
    """A check that a string (or every string of a list) is one of `choices`."""

    def check(value):
        for v in [value] if isinstance(value, str) else value:
            if v not in choices:
                return f"{v!r} is not one of {', '.join(c for c in choices if c)}"
        return None

    return check


GAME_KEYS = (
    Key("name", "str", "Loan default game", "Title shown on the leaderboard."),
    Key("seed", "int", 1, "Seed of the request stream: same seed, same applicants.", _at_least(0)),
    Key(
        "label_delay",
        "duration",
        60.0,
        "Seconds until a request's true label is visible to the team.",
        _at_least(0),
    ),
    Key(
        "timeout",
        "duration",
        1.0,
        "Seconds a team has to answer one request (total).",
        _at_least(0, strict=True),
    ),
    Key("max_body_bytes", "int", 65536, "Largest answer body accepted, in bytes.", _at_least(1)),
    Key(
        "allowed_hosts",
        "strings",
        ("127.0.0.1", "::1", "localhost"),
        "Host names, IPs or CIDR networks the customer may call.",
    ),
    Key(
        "persist_changes",
        "bool",
        True,
        "A phase without a `shift`/`drift` table keeps the previous phase's; false: it has none.",
    ),
    Key(
        "data_seed",
        "int",
        DEFAULT_DATA_SEED,
        "Seed of the generated training data (the default is data/train_data.csv's).",
        _at_least(0),
    ),
    Key("data_rows", "int", DEFAULT_ROWS, "Rows of the generated training data.", _at_least(100)),
    Key(
        "pool",
        "str",
        None,
        "Own data: the hidden pool CSV the customer draws from (relative to this file).",
    ),
    Key(
        "training_data",
        "str",
        None,
        "Own data: the public training CSV (default: train_data.csv beside the pool).",
    ),
    Key("label_column", "str", LABEL, "Own data: the label column of the pool."),
)
PHASE_KEYS = (
    Key("name", "str", None, "Short name shown on the leaderboard (default: the kind)."),
    Key(
        "kind",
        "str",
        None,
        "One of " + ", ".join(PHASE_KINDS) + " (required).",
        _one_of(PHASE_KINDS),
    ),
    Key(
        "duration",
        "duration",
        None,
        'Length: seconds, or a string like "90s", "10m", "1h" (required).',
        _at_least(0, strict=True),
    ),
    Key(
        "rate",
        "float",
        2.0,
        "Rounds (applicants) per second; each goes to every team.",
        _at_least(0, strict=True),
    ),
    Key("burst", "int", 1, "Up to this many rounds may start at the same instant.", _at_least(1)),
    Key("description", "str", None, "What the phase means (default: the kind's)."),
    Key("oddity_share", "float", 0.0, "Share of requests that carry oddities.", _share),
    Key(
        "oddities",
        "strings",
        ODDITY_KINDS,
        "The oddity kinds this phase may use.",
        _one_of(ODDITY_KINDS),
    ),
    Key("shift", "table", None, "Population shift: a table of the keys below."),
    Key("drift", "table", None, "Concept drift: a table of the keys below."),
)
SHIFT_KEYS = (
    Key("age_delta", "float", 0.0, "Years added to the applicants' mean age."),
    Key("loan_factor", "float", 1.0, "Multiplies every loan amount.", _at_least(0, True)),
    Key("new_region", "str", "", "A region never seen in training ..."),
    Key("new_region_share", "float", 0.0, "... and the share of applicants from it.", _share),
)
DRIFT_KEYS = (
    Key("region", "str", "", "A region hit by a crisis ..."),
    Key("region_logit", "float", 0.0, "... and the log-odds of default added there."),
    Key(
        "employment",
        "str",
        "",
        "An employment type hit by the change ...",
        _one_of(("", *EMPLOYMENT)),
    ),
    Key("employment_logit", "float", 0.0, "... and its added log-odds of default."),
    Key(
        "burden_weight",
        "float",
        1.0,
        "Multiplies the effect of the loan's payment burden.",
        _at_least(0),
    ),
    Key(
        "history_weight", "float", 1.0, "Multiplies the effect of past late payments.", _at_least(0)
    ),
)


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


DURATION_RE = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$"
)


def parse_duration(value) -> float | None:
    """Seconds from a number or a string like "90s", "10m", "1h30m"; None if not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.strip():
        match = DURATION_RE.match(value)
        if match and any(match.groups()):
            h, m, s = (float(g) if g else 0.0 for g in match.groups())
            return h * 3600 + m * 60 + s
    return None


class _Reader:
    """Validates one file's parsed TOML against the key declarations."""

    def __init__(self, path: Path, text: str):
        self.path = path
        self.lines = text.splitlines()

    def fail(self, where: tuple, key: str | None, problem: str):
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
            if key and in_parent and (index is None or index == phase) and loose_re.search(line):
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

    def value(self, key: Key, value, where: tuple):
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


def load_game_file(path) -> GameFile:
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
    if not isinstance(raw.get("game", {}), dict):
        reader.fail((), "game", "must be a table [game]")
    game = reader.table(raw.get("game", {}), GAME_KEYS, ("game",))
    for name in ("pool", "training_data"):
        if game[name] is not None:
            game[name] = str((path.parent / game[name]).resolve())
    if game["pool"] and not game["training_data"]:
        game["training_data"] = str(Path(game["pool"]).with_name("train_data.csv"))
    settings = Settings(**game)

    raw_phases = raw.get("phases")
    if not isinstance(raw_phases, list) or not raw_phases:
        reader.fail((), "phases", "the file needs at least one [[phases]] table")
    phases, shift, drift = [], Shift(), Drift()
    for i, raw_phase in enumerate(raw_phases):
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
    game_file = GameFile(settings=settings, phases=tuple(phases), path=str(path))
    log.info(
        "loaded game file path=%s phases=%d duration=%.0fs", path, len(phases), game_file.duration
    )
    return game_file


def settings_markdown() -> str:
    """The tables of every game-file key, as docs/GAMEFILE.md shows them."""
    parts = []
    for title, keys in (
        ("`[game]`", GAME_KEYS),
        ("`[[phases]]`", PHASE_KEYS),
        ("`[phases.shift]`", SHIFT_KEYS),
        ("`[phases.drift]`", DRIFT_KEYS),
    ):
        parts.append(f"### {title}\n\n| key | type | default | meaning |\n|---|---|---|---|")
        for k in keys:
            default = "—" if k.default is None else f"`{_toml(k.default)}`"
            parts.append(f"| `{k.name}` | {k.type} | {default} | {k.help} |")
        parts.append("")
    return "\n".join(parts)


def _toml(value) -> str:
    """A default value written the way a game file would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def field_names(cls) -> tuple[str, ...]:
    """The field names of a dataclass (used to keep declarations and dataclasses in step)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def _clock(seconds: float) -> str:
    """Seconds as m:ss (or h:mm:ss)."""
    s = int(round(seconds))
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def _changes(phase: Phase) -> str:
    """A short description of the shift and drift in force in a phase."""
    parts = []
    s, d = phase.shift, phase.drift
    if s.age_delta:
        parts.append(f"age {s.age_delta:+g} y")
    if s.loan_factor != 1:
        parts.append(f"loans x{s.loan_factor:g}")
    if s.new_region and s.new_region_share:
        parts.append(f"new region {s.new_region} {s.new_region_share:.0%}")
    if d.region and d.region_logit:
        parts.append(f"{d.region} {d.region_logit:+g} logit")
    if d.employment and d.employment_logit:
        parts.append(f"{d.employment} {d.employment_logit:+g} logit")
    if d.burden_weight != 1:
        parts.append(f"burden x{d.burden_weight:g}")
    if d.history_weight != 1:
        parts.append(f"late payments x{d.history_weight:g}")
    return ", ".join(parts) or "-"


def describe(game: GameFile, teams: int = 20) -> str:
    """A readable summary of a game's timeline, as `game-server game check` prints it."""
    st = game.settings
    source = (
        f"own data: pool {st.pool}, training {st.training_data}, label {st.label_column!r}"
        if st.pool
        else f"generated (data seed {st.data_seed}, {st.data_rows} training rows)"
    )
    lines = [
        f"{st.name}  ({game.path})",
        f"seed {st.seed}, label delay {st.label_delay:g} s, timeout {st.timeout:g} s, "
        f"max body {st.max_body_bytes} bytes, allowed hosts {', '.join(st.allowed_hosts)}",
        f"data: {source}",
        "",
        f"{'#':>2}  {'phase':<20} {'kind':<7} {'start':>7} {'length':>7} {'rate/s':>7} "
        f"{'burst':>5} {'odd':>4} {'rounds':>8}  world (shift, drift)",
    ]
    start = 0.0
    for i, p in enumerate(game.phases, 1):
        lines.append(
            f"{i:>2}  {p.name[:20]:<20} {p.kind:<7} {_clock(start):>7} {_clock(p.duration):>7} "
            f"{p.rate:>7g} {p.burst:>5} {p.oddity_share:>4.0%} {p.expected_rounds:>8,.0f}  "
            f"{_changes(p)}"
        )
        start += p.duration
    rounds = sum(p.expected_rounds for p in game.phases)
    peak = max(p.rate for p in game.phases)
    lines += [
        "",
        f"total {_clock(game.duration)}, {rounds:,.0f} rounds (each round goes to every team)",
        f"with {teams} teams: {rounds * teams:,.0f} requests, "
        f"{rounds * teams / game.duration:,.0f}/s on average, "
        f"{peak * teams:,.0f}/s at the peak rate",
    ]
    return "\n".join(lines)
