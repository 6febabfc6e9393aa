"""The `game-server users` commands: create, delete, list and check the teams' accounts.

Thin: the options become a `config.Settings` and an executor (local, or SSH with
`--ssh USER@HOST[:PORT]`), and the work is done in provision.py (create), teardown.py
(delete), registry.py (list) and checks.py (check).
"""

import functools
import shlex
from collections.abc import Callable
from typing import Any

import click

from game_server.accounts import checks, limits, provision, teardown
from game_server.accounts.config import TEAM_VENV, AccountsError, Settings, TeamLimits
from game_server.accounts.executors import (
    ExecError,
    Executor,
    LocalExecutor,
    SSHExecutor,
    parse_target,
)
from game_server.accounts.levels import COMPLETE, LEVELS
from game_server.accounts.registry import interrupted_at, list_teams
from game_server.accounts.roster import DEFAULT_PREFIX
from game_server.common import state_dir
from game_server.common.extras import require
from game_server.common.settings import PSQL_ADMIN
from game_server.common.settings import option as setting_option


def _span(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    """Parse a port range `LOW-HIGH`."""
    low, _, high = value.partition("-")
    if not (low.isdigit() and high.isdigit() and 1024 <= int(low) <= int(high) <= 65535):
        raise click.BadParameter(f"{value!r}: expected LOW-HIGH within 1024-65535")
    return int(low), int(high)


def _limits(value: str) -> TeamLimits:
    """Parse `--limits` (limits.parse), as a usage error when it is wrong."""
    try:
        return limits.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


# The options every `users` command shares, in the order --help lists them: how to reach
# the server (they make the executor) ...
_CONNECTION_OPTIONS = (
    click.option(
        "--ssh",
        "target",
        metavar="USER@HOST[:PORT]",
        help="Run on this server over SSH (default: on this machine, as root).",
    ),
    click.option("--key", type=click.Path(dir_okay=False), help="SSH private key for --ssh."),
    click.option(
        "--known-hosts",
        type=click.Path(dir_okay=False),
        help="known_hosts with the server's host key (default ~/.ssh/known_hosts).",
    ),
    click.option(
        "--accept-new-host-key",
        is_flag=True,
        help="Trust (and record) the server's host key if it is unknown.",
    ),
    click.option(
        "--timeout",
        type=click.FloatRange(1, 3600),
        default=120,
        show_default=True,
        help="Seconds per command on the server (connecting: 15).",
    ),
)
# ... and how it is set up (they make the `Settings`).
_SETUP_OPTIONS = (
    click.option(
        "--prefix",
        default=DEFAULT_PREFIX,
        show_default=True,
        help="Prefix of every team's Linux user, role and schema.",
    ),
    click.option(
        "--registry",
        default=Settings.registry,
        show_default=True,
        help="Provisioning registry on the server (JSON, mode 0600).",
    ),
    click.option(
        "--handout-dir",
        default=state_dir.default_path("handout"),
        show_default=True,
        type=click.Path(file_okay=False),
        help="Where the instructor's handout is kept, on this machine (0700).",
    ),
    setting_option(PSQL_ADMIN),
    click.option(
        "--workshop-db",
        default="workshop",
        show_default=True,
        help="The database that holds the teams' schemas.",
    ),
    click.option(
        "--game-db",
        default="game",
        show_default=True,
        help="The game's PostgreSQL database, which no team may connect to.",
    ),
    click.option(
        "--game-role",
        default="game_server",
        show_default=True,
        help="The game's own database role (created by the init SQL if missing).",
    ),
    click.option(
        "--game-cmd",
        default="game-server",
        show_default=True,
        help="The game-server command on the server (teams add/list/disable).",
    ),
    click.option("--no-game", is_flag=True, help="Do not register teams in the game."),
    click.option(
        "--game-url",
        default="http://127.0.0.1:8000",
        show_default=True,
        help="The game's URL, written into each team's .env.",
    ),
    click.option(
        "--ssh-port",
        "team_ssh_port",
        type=int,
        default=None,
        help="The port teams log in on (default: --ssh's port, else 22).",
    ),
)


def server_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options every `users` command shares: where the server is and how it is set up."""

    @functools.wraps(func)
    def wrapper(ctx_obj: dict[str, Any] | None, **kw: Any) -> Any:
        # paramiko: `check` logs in as the teams over SSH, `--ssh` runs everything over it
        require("accounts", click.get_current_context().command_path)
        target = kw.pop("target")
        conn = {k: kw.pop(k) for k in ("key", "known_hosts", "accept_new_host_key", "timeout")}
        settings = _settings(ctx_obj, target, kw, conn["known_hosts"])
        try:
            with _executor(target, conn) as ex:
                return func(ex, settings, **kw)
        except (ValueError, ExecError, AccountsError) as exc:
            raise click.ClickException(str(exc)) from None

    for option in reversed(_CONNECTION_OPTIONS + _SETUP_OPTIONS):
        wrapper = option(wrapper)
    return click.pass_obj(wrapper)


def _executor(target: str | None, conn: dict[str, Any]) -> Executor:
    """Where the commands run: on this machine, or on `--ssh`'s server."""
    if not target:
        return LocalExecutor(timeout=conn["timeout"])
    user, host, port = parse_target(target)
    return SSHExecutor(
        host,
        user,
        port,
        key_path=conn["key"],
        known_hosts=conn["known_hosts"],
        accept_new_host_key=conn["accept_new_host_key"],
        timeout=conn["timeout"],
    )


def _settings(
    obj: dict[str, Any] | None, target: str | None, kw: dict[str, Any], known_hosts: str | None
) -> Settings:
    """Settings from the shared options (which are removed from `kw`)."""
    host, port = "127.0.0.1", 22
    if target:
        _, host, port = parse_target(target)
    ssh_port = kw.pop("team_ssh_port") or port
    no_game, game_cmd = kw.pop("no_game"), kw.pop("game_cmd")
    return Settings(
        prefix=kw.pop("prefix"),
        registry=kw.pop("registry"),
        handout_dir=kw.pop("handout_dir"),
        psql_admin=shlex.split(kw.pop("psql_admin")),
        workshop_db=kw.pop("workshop_db"),
        game_db=kw.pop("game_db"),
        game_role=kw.pop("game_role"),
        game_url=kw.pop("game_url"),
        game_cmd=None if no_game else shlex.split(game_cmd),
        game_db_url=(obj or {}).get("db"),
        ssh_host=host,
        ssh_port=ssh_port,
        known_hosts=known_hosts,
    )


@click.command("create")
@click.argument("roster", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@click.option(
    "--rotate", is_flag=True, help="Set new Linux and database passwords and game tokens."
)
@click.option("--no-check", is_flag=True, help="Skip the check after provisioning.")
@click.option(
    "--api-ports",
    default="9000-9499",
    show_default=True,
    callback=_span,
    help="Each team's API port and its debug port (flask --debug) come from here.",
)
@click.option("--jupyter-ports", default="9500-9999", show_default=True, callback=_span)
@click.option(
    "--team-venv",
    default=TEAM_VENV,
    show_default=True,
    help="The teams' shared virtual environment: its bin/ is first on their PATH.",
)
@click.option(
    "--starter",
    "starter_level",
    type=click.Choice(LEVELS),
    default=COMPLETE,
    show_default=True,
    help="The participant starter's level: complete, or exercises (five gaps to fill). "
    "Only for homes that get the starter now: a team's files are never replaced.",
)
@click.option(
    "--team-timeout",
    type=click.FloatRange(1, 3600),
    default=Settings.team_timeout,
    show_default=True,
    help="Seconds for each command run as a team: a team that stops one fails alone.",
)
@click.option(
    "--limits",
    "limits_text",
    default=limits.text(TeamLimits()),
    show_default=True,
    callback=lambda c, p, v: _limits(v),
    help="Each team's fair share: CPU weight, memory ceiling (MB), processes; "
    "or off (docs/INSTRUCTOR.md, Fair shares).",
)
@server_options
def create(
    ex: Executor,
    settings: Settings,
    roster: str,
    dry_run: bool,
    rotate: bool,
    no_check: bool,
    api_ports: tuple[int, int],
    jupyter_ports: tuple[int, int],
    team_venv: str,
    starter_level: str,
    team_timeout: float,
    limits_text: TeamLimits,
) -> None:
    """Create the accounts of every team in ROSTER (a CSV: name, members, ssh_key)."""
    settings.rotate, settings.api_ports, settings.jupyter_ports = rotate, api_ports, jupyter_ports
    settings.team_venv, settings.starter_level = team_venv, starter_level
    settings.team_timeout = team_timeout
    settings.limits = limits_text
    provision.create(ex, settings, roster, dry_run=dry_run, echo=click.echo)
    if not (dry_run or no_check) and not checks.check(ex, settings, echo=click.echo):
        raise click.ClickException("the check after provisioning found problems (above)")


@click.command("delete")
@click.argument("names", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Delete every provisioned team.")
@click.option(
    "--archive-homes",
    type=str,
    default=None,
    metavar="DIR",
    help="Archive each home as DIR/USER-TIME.tar.gz (0600), on the server.",
)
@server_options
def delete(
    ex: Executor,
    settings: Settings,
    names: tuple[str, ...],
    everything: bool,
    archive_homes: str | None,
) -> None:
    """Delete teams (by team or user name): user, home, role, schema, ports, game entry."""
    if bool(names) == everything:
        raise click.UsageError("give team names or --all (not both)")
    teardown.delete(ex, settings, None if everything else list(names), archive_homes, click.echo)


@click.command("list")
@server_options
def list_(ex: Executor, settings: Settings) -> None:
    """List the provisioned teams (from the registry on the server)."""
    provisioned = list_teams(ex, settings)
    if not provisioned:
        click.echo(f"no teams yet in {settings.registry}: `game-server users create ROSTER.csv`")
    for t in provisioned:
        step = interrupted_at(t)
        click.echo(
            f"{t.user:<32} {t.name:<40} api={t.api_port} jupyter={t.jupyter_port} "
            f"debug={t.debug_port or '-'} created={t.created}"
            + (f" UNFINISHED (interrupted at {step})" if step else "")
        )


@click.command("check")
@click.argument("names", nargs=-1)
@server_options
def check(ex: Executor, settings: Settings, names: tuple[str, ...]) -> None:
    """Log in as each team (database and SSH) and show that the isolation holds."""
    if not checks.check(ex, settings, list(names) or None, echo=click.echo):
        raise click.ClickException("some checks failed (above)")


COMMANDS = (create, delete, list_, check)
