"""Every setting the game server reads from its environment, declared once.

A `Setting` holds its name, environment variable, default, type and meaning. `get` is the
one way to read one: the environment first, then the default, parsed to its type; a bad
value is a one-line `SettingError` naming the variable. The command line's options for
these settings are made from the same declarations (`option`: the variable, the default
and the help), and docs/SETTINGS.md is rendered from them (`markdown`, written by
`make settings-doc`); tests/test_settings.py keeps the code, the command line and the doc
in step. The rules of a game (time limits, phases...) are not here: they are the keys of
its game file (`scenario/gamekeys.py`, docs/GAMEFILE.md).

Imports nothing of the game: every part may read its settings here.
"""

import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import click
from click.core import ParameterSource

T = TypeVar("T")

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")  # the log levels `--log-level` takes
ADMIN_TOKEN_MIN = 16  # characters: guessing it is hopeless at 5 tries a minute
# Not a setting, a constant several parts share: a child process (the web process, a web
# worker, a demo bot) gets this long to end after SIGTERM, then it is killed (SIGKILL).
STOP_SECONDS = 5.0


class SettingError(ValueError):
    """A setting's value the game refuses; the message is one line naming the variable."""


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One setting: read with `get`, shown in --help and docs/SETTINGS.md."""

    name: str  # as the code says it: `settings.DATABASE_URL.name` is "database_url"
    env: str  # the environment variable
    type: str  # what the doc says the value is
    default: T
    help: str  # one or two sentences: the --help text and the doc's meaning
    parse: Callable[[str], T]  # a value from the environment (ValueError: why it is bad)
    default_doc: str = ""  # the doc's words for a default that is not a plain value
    option: str = ""  # the command-line option that sets it too, e.g. "--db"
    commands: str = ""  # the doc's words for the commands that have `option` (else all)
    choices: tuple[str, ...] = ()
    metavar: str = "TEXT"  # the value's name in --help


def get(setting: Setting[T], environ: Mapping[str, str] | None = None) -> T:
    """The setting's value: its environment variable when set and not empty (parsed to
    its type), else its default. SettingError (one line) for a bad value."""
    raw = (os.environ if environ is None else environ).get(setting.env, "")
    return check(setting, raw) if raw else setting.default


def check(setting: Setting[T], raw: str) -> T:
    """`raw` parsed as the value of `setting`; SettingError naming the variable if bad."""
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise SettingError(f"{setting.env} {exc}") from None


def _text(raw: str) -> str:
    """Any text."""
    return raw


def _path(raw: str) -> Path:
    """A path; `~` is the user's home."""
    return Path(raw).expanduser()


def _level(raw: str) -> str:
    """A log level, in any case."""
    if raw.upper() not in LEVELS:
        raise ValueError(f"is {raw!r}, not one of {', '.join(LEVELS)}")
    return raw.upper()


def _token(raw: str) -> str:
    """A token long enough that guessing it is hopeless."""
    if len(raw) < ADMIN_TOKEN_MIN:
        raise ValueError(
            f"is {len(raw)} characters long; the instructor page needs at least "
            f"{ADMIN_TOKEN_MIN} (e.g. `openssl rand -hex 16`)"
        )
    return raw


def _command(raw: str) -> str:
    """A command line, split as a shell would split it."""
    try:
        shlex.split(raw)
    except ValueError as exc:
        raise ValueError(f"is not a command line ({exc}): {raw!r}") from None
    return raw


DATABASE_URL: Setting[str | None] = Setting(
    "database_url",
    "GAME_DATABASE_URL",
    "SQLAlchemy URL (may hold a password)",
    None,
    "The game database, e.g. postgresql+psycopg://game_server:PASSWORD@127.0.0.1:5432/game.",
    _text,
    default_doc="sqlite:///instance/game.sqlite in the current folder, created only by "
    "`init`, `new` and `run`",
    option="--db",
    metavar="URL",
)
LOG_LEVEL: Setting[str] = Setting(
    "log_level",
    "GAME_LOG_LEVEL",
    "one of " + ", ".join(LEVELS) + " (any case)",
    "INFO",
    "Least severe log records to show.",
    _level,
    option="--log-level",
    choices=LEVELS,
)
ADMIN_TOKEN: Setting[str | None] = Setting(
    "admin_token",
    "GAME_ADMIN_TOKEN",
    f"secret, at least {ADMIN_TOKEN_MIN} characters",
    None,
    "The instructor's token: the instructor page's login and the instructor's JSON API "
    "(`Authorization: Bearer`).",
    _token,
    default_doc="none: the instructor page and API are off",
)
SECRET_KEY: Setting[str | None] = Setting(
    "secret_key",
    "GAME_SECRET_KEY",
    "secret",
    None,
    "The key that signs the instructor's session cookie.",
    _text,
    default_doc="a random key made once and kept in the game database, so that every web "
    "process shares it",
)
SLIDES_DIR: Setting[Path | None] = Setting(
    "slides_dir",
    "GAME_SLIDES_DIR",
    "path",
    None,
    "The built workshop deck the pages serve at /slides/ (`setup_server.sh` sets it).",
    _path,
    default_doc="slides/build/ of the checkout (`make slides`)",
)
STATE_DIR: Setting[Path | None] = Setting(
    "state_dir",
    "GAME_STATE_DIR",
    "path",
    None,
    "The private folder (0700) of the instructor's handout and of the exports.",
    _path,
    default_doc="$XDG_STATE_HOME/game-server, else ~/.local/state/game-server",
)
SYSTEM_ENV: Setting[Path] = Setting(
    "system_env",
    "GAME_SYSTEM_ENV",
    "path",
    Path("/etc/game-server/env"),
    "The server's settings file (`scripts/setup_server.sh` writes it). While it exists, a "
    "command with no database chosen says to load it instead of using a database in the "
    "current folder; the tests move it so that a server set up on their machine changes "
    "nothing they see.",
    _path,
)
PSQL_ADMIN: Setting[str] = Setting(
    "psql_admin",
    "GAME_PSQL_ADMIN",
    "command line",
    "sudo -n -u postgres psql -X -v ON_ERROR_STOP=1",
    "The database admin's psql command on the server, for `users` and `rehearse` "
    "(`-d DB` is added).",
    _command,
    option="--psql-admin",
    metavar="COMMAND",
    commands="`users` commands, `rehearse`",
)
SETTINGS: tuple[Setting[Any], ...] = (
    DATABASE_URL,
    LOG_LEVEL,
    ADMIN_TOKEN,
    SECRET_KEY,
    SLIDES_DIR,
    STATE_DIR,
    SYSTEM_ENV,
    PSQL_ADMIN,
)
# Variables the game reads that are not its own settings: the doc lists them.
OTHER_VARIABLES = (
    ("XDG_STATE_HOME", "the base of the default state folder (GAME_STATE_DIR)"),
    ("LISTEN_PID, LISTEN_FDS", "the socket systemd passes (`game-server.socket`), read once"),
    ("DISPLAY, WAYLAND_DISPLAY", "`game-server demo` opens a browser only with a display"),
    ("SUPERVISOR_HEARTBEAT_FD", "set by the game for its child processes: the pipe they beat on"),
)


class SettingType(click.ParamType[Any, Any]):
    """A command-line option's type that parses as `get` does. A bad value from the
    environment is one line naming the variable; from the command line, a usage error."""

    def __init__(self, setting: Setting[Any]):
        """The type of `setting`'s option."""
        self.setting = setting
        self.name = setting.name

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        """The choices, like click.Choice, else the value's name."""
        choices = self.setting.choices
        return f"[{'|'.join(choices)}]" if choices else self.setting.metavar

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The parsed value; a ClickException (one line) for a bad one from the variable."""
        if not isinstance(value, str):
            return value
        try:
            return self.setting.parse(value)
        except ValueError as exc:
            name = param.name if param is not None else None
            if ctx and name and ctx.get_parameter_source(name) is ParameterSource.ENVIRONMENT:
                raise click.ClickException(f"{self.setting.env} {exc}") from None
            self.fail(f"it {exc}", param, ctx)


def option(setting: Setting[Any], *decls: str, **extra: Any) -> Callable[[Any], Any]:
    """The click option of `setting` (its `option` name unless `decls` are given): its
    variable, default and help come from the declaration; `extra` adds click's own."""
    default = None if setting.default is None else str(setting.default)
    text = setting.help
    if setting.default_doc:  # a default in words: click cannot show it
        text = f"{text.removesuffix('.')} (default: {setting.default_doc})."
    return click.option(
        *(decls or (setting.option,)),
        envvar=setting.env,
        show_envvar=True,
        type=SettingType(setting),
        default=default,
        show_default=default is not None,
        help=text,
        **extra,
    )


def markdown() -> str:
    """docs/SETTINGS.md, rendered from the declarations."""
    lines = [
        "# Settings",
        "",
        "<!-- Rendered from game_server/common/settings.py by `make settings-doc`; do not edit by",
        "hand (tests/test_settings.py checks this page, the code and the command line agree). -->",
        "",
        "Everything the game server reads from its environment. A variable that is not set, "
        "or set to the empty string, is the default. A bad value stops the command with one "
        "line naming the variable. Where a `game-server` option is named, the option wins "
        "over the variable (`game-server --help` shows both). On a server, "
        "`scripts/setup_server.sh` writes the settings into `/etc/game-server/env` (0600), "
        "which the systemd unit loads; load it in a shell with "
        "`set -a; . /etc/game-server/env; set +a`.",
        "",
        "The rules of a game (time limits, request rates, phases) are not settings of the "
        "server: they are the keys of its game file, in [GAMEFILE.md](GAMEFILE.md).",
        "",
        "| variable | option | value | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        default = s.default_doc or f"`{s.default}`"
        option_text = f"`{s.option}`" if s.option else "—"
        option_text += f" ({s.commands})" if s.commands else ""
        lines.append(f"| `{s.env}` | {option_text} | {s.type} | {default} | {s.help} |")
    lines += ["", "Other variables the game server reads:", ""]
    lines += [f"- `{names}`: {meaning}." for names, meaning in OTHER_VARIABLES]
    return "\n".join(lines) + "\n"
