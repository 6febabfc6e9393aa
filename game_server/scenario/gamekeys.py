"""Every key a game file may hold, declared once: name, type, default, meaning and check.

The loader (`gamefile`), `game-server game check` and docs/GAMEFILE.md all read these
declarations, and a test checks the docs list every one of them.
"""

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from game_server.scenario.oddities import KINDS as ODDITY_KINDS
from game_server.scenario.population import DEFAULT_DATA_SEED, DEFAULT_ROWS, EMPLOYMENT, LABEL

PHASE_KINDS = ("warmup", "messy", "shift", "peak", "drift")
# Defaults the customer also takes when built without a game file (play/customer.py).
DEFAULT_TIMEOUT = 1.0
DEFAULT_MAX_BODY_BYTES = 64 * 1024
KIND_DESCRIPTIONS = {
    "warmup": "Warm-up: clean requests from the training population. Get your API up.",
    "messy": "Messy input: some requests carry missing fields, nulls, strings, odd values.",
    "shift": "Population shift: younger applicants, larger loans, a new region.",
    "peak": "Peak traffic: many more requests, in concurrent bursts.",
    "drift": "The world changes: what predicts default is not what it was.",
}


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

    def check(value: Any) -> str | None:
        bad = value <= low if strict else value < low
        return f"must be {'>' if strict else '>='} {low:g}, got {value!r}" if bad else None

    return check


def _share(value: Any) -> str | None:
    """A check that a number is a share between 0 and 1."""
    return None if 0 <= value <= 1 else f"must be between 0 and 1, got {value!r}"


def _one_of(choices: tuple[str, ...]) -> Callable[[object], str | None]:
    """A check that a string (or every string of a list) is one of `choices`."""

    def check(value: Any) -> str | None:
        for v in [value] if isinstance(value, str) else value:
            if v not in choices:
                return f"{v!r} is not one of {', '.join(c for c in choices if c)}"
        return None

    return check


GAME_KEYS = (
    Key("name", "str", "Loan default game", "Title shown on the leaderboard."),
    Key(
        "seed",
        "int",
        1,
        "Varies the request stream. Public, like this file: the stream also draws from a "
        "random secret made by `game-server init` and kept in the game database, so the "
        "same seed in another game gives other applicants.",
        _at_least(0),
    ),
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
        DEFAULT_TIMEOUT,
        "Seconds a team has to answer one request (total).",
        _at_least(0, strict=True),
    ),
    Key(
        "max_body_bytes",
        "int",
        DEFAULT_MAX_BODY_BYTES,
        "Largest answer body accepted, in bytes.",
        _at_least(1),
    ),
    Key(
        "allowed_hosts",
        "strings",
        ("127.0.0.1", "::1", "localhost"),
        "Host names, IPs or CIDR networks the customer may call (`game-server allow` adds more).",
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


DURATION_RE = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$"
)


def parse_duration(value: object) -> float | None:
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


def _toml(value: object) -> str:
    """A default value written the way a game file would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def field_names(cls: Any) -> tuple[str, ...]:
    """The field names of a dataclass (used to keep declarations and dataclasses in step)."""
    return tuple(f.name for f in dataclasses.fields(cls))
