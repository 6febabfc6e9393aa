"""`game-server doctor`: is this server ready for the workshop? One line per problem.

Run on the server the day before (as root, with the game's settings loaded). It checks
what the participants and the game need, in the order they need it: the game database
reachable and initialised, an SSH server, each provisioned team's account, `.env` and API,
and the pages' port. Every problem is one line that says what to do; none means ready.
"""

import json
import os
import socket
import stat
import subprocess
import urllib.request
from pathlib import Path

import click
import sqlalchemy as sa

from game_server.accounts import limits
from game_server.accounts.config import Settings
from game_server.accounts.executors import LocalExecutor
from game_server.accounts.registry import Record
from game_server.accounts.state import starter_paths
from game_server.common import sizing
from game_server.common.logs import first_line
from game_server.processes import oom
from game_server.storage import database, fresh, games


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def api_answers(port: int) -> bool:
    """Whether a team's API answers GET /health on its port (no proxy, 2 s)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


def database_problems(url: str | None) -> list[str]:
    """The game database: reachable, and holding a game."""
    try:
        engine = database.command_engine(url)
    except database.NoDatabase as exc:
        return [str(exc)]
    try:
        with engine.connect() as conn:
            finished = fresh.finished_problem(conn)
    except games.NotInitialised:
        return ["the game database has no game yet: run `game-server init --game workshop`"]
    except sa.exc.SQLAlchemyError as exc:
        first = first_line(exc, 160)
        return [
            f"cannot reach the game database {database.safe_url(engine)} ({first}): "
            "is PostgreSQL running (`pg_isready`), and GAME_DATABASE_URL loaded?"
        ]
    finally:
        engine.dispose()
    return [finished] if finished else []


def game_on_port(port: int) -> str | None:
    """The game's state when `game-server run` answers on 127.0.0.1:port, else None."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/api/health", timeout=2) as response:
            body = json.load(response)
    except (OSError, ValueError):
        return None
    return str(body["state"]) if isinstance(body, dict) and "state" in body else None


def team_problems(record: Record) -> list[str]:
    """One provisioned team: its Linux user, its `.env` (a regular file), its API."""
    name, user = record.name, record.user
    if subprocess.run(["id", "--", user], capture_output=True).returncode != 0:
        return [f"team {name}: no Linux user {user}: run `game-server users create ROSTER.csv`"]
    problems = []
    home = os.path.expanduser(f"~{user}")
    env = starter_paths(home)[1]
    try:  # lstat: never follow a link a team planted
        regular = stat.S_ISREG(os.lstat(env).st_mode)
    except OSError:
        regular = False
    if not regular:
        problems.append(f"team {name}: no {env}: run `game-server users create ROSTER.csv`")
    if not api_answers(record.api_port):
        problems.append(
            f"team {name}: its API on port {record.api_port} does not answer /health "
            "(not started yet: the team starts it, README step 3)"
        )
    return problems


def registry_teams(path: str) -> tuple[list[Record], list[str]]:
    """The provisioned teams in the registry at `path`, and a problem when it is unreadable."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return [], []  # nobody provisioned yet: nothing to check
    except OSError as exc:
        return [], [f"cannot read the registry {path} ({exc.strerror}): run as root"]
    try:
        return [Record.from_dict(t) for t in json.loads(text)["teams"]], []
    except (ValueError, KeyError, TypeError):
        return [], [f"{path} is not a provisioning registry"]


def problems(url: str | None, port: int, ssh_port: int, registry: str) -> list[str]:
    """Every problem found, in the order the workshop meets them."""
    found = database_problems(url)
    if not listening(ssh_port):
        found.append(
            f"no SSH server on port {ssh_port}: teams cannot log in "
            "(`apt-get install openssh-server`, then start it)"
        )
    teams, trouble = registry_teams(registry)
    found += trouble
    ex = LocalExecutor()
    how = limits.mechanism(ex)
    for record in teams:
        found += team_problems(record)
        user = record.user
        if limits.uid_of(ex, user) and not limits.in_place(ex, Settings(), user, how):
            found.append(
                f"team {record.name}: no fair share ({how}): run `game-server users create "
                "ROSTER.csv` again (it applies the limits)"
            )
    if listening(port) and game_on_port(port) is None:
        found.append(
            f"port {port} is in use by something that is not the game: the pages need it "
            "(`ss -ltnp` says what)"
        )
    return found


@click.command()
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="The pages' port: free, or the game's own while it runs.",
)
@click.option("--ssh-port", type=click.IntRange(1, 65535), default=22, show_default=True)
@click.option(
    "--registry",
    default=Settings().registry,
    show_default=True,
    help="The provisioning registry (`users create --registry`).",
)
@click.option(
    "--teams",
    type=click.IntRange(1, 10000),
    default=None,
    help="Warn when this server is smaller than the sizing table says for N teams.",
)
@click.pass_obj
def doctor(obj: dict, port: int, ssh_port: int, registry: str, teams: int | None) -> None:
    """Check this server is ready for the workshop: one line per problem, exit 0 when ready."""
    if teams is not None:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        small = sizing.too_small(teams, os.cpu_count() or 1, memory_gb)
        click.echo(
            f"doctor: warning: {small}"
            if small
            else f"doctor: size: this server is large enough for {teams} teams (sizing table)"
        )
    click.echo(f"doctor: fair shares: {limits.DESCRIPTIONS[limits.mechanism(LocalExecutor())]}")
    for line in oom.warnings():
        click.echo(f"doctor: warning: {line}")
    found = problems(obj["db"], port, ssh_port, registry)
    for line in found:
        click.echo(f"doctor: {line}")
    if found:
        raise SystemExit(1)
    state = game_on_port(port)
    pages = f"the game is up on port {port} ({state})" if state else f"port {port} free for `run`"
    click.echo(f"doctor: ready (database, game, SSH, every team's account and API; {pages})")
