"""The actual state on the server, read through an executor, for `create` to compare with.

The Linux users (`getent passwd`), the ports in use (`ss -ltnH`), the PostgreSQL roles and
schemas with the prefix, the game's teams (`teams list --json`), what the starter folder,
its `.env` and the login-shell snippet are (seen as each team user: files.path_kinds), and
the provisioning registry and the instructor's handout.
"""

from dataclasses import dataclass, field
from typing import NamedTuple

from game_server.accounts import handout, pgsql
from game_server.accounts.config import STARTER_DIR_NAME, Settings
from game_server.accounts.executors import ExecError, Executor
from game_server.accounts.files import path_kinds, read_file
from game_server.accounts.game_cli import game_teams
from game_server.accounts.registry import Record
from game_server.accounts.roster import Team


@dataclass
class DbState:
    """The PostgreSQL side: the teams' roles and schemas, and the shared set-up."""

    roles: set[str] = field(default_factory=set)  # with the prefix
    schemas: set[str] = field(default_factory=set)  # with the prefix, in the workshop db
    base_role: bool = False  # the `workshop_team` role exists
    workshop_db: bool = False  # the workshop database exists

    @property
    def ready(self) -> bool:
        """Whether the shared init SQL has been applied (a team's schema needs it)."""
        return self.base_role and self.workshop_db


@dataclass
class State:
    """What is on the server now; `apply` updates `users` and `db` as it changes them."""

    registry: dict[str, Record]  # the provisioned teams by name
    users: dict[str, str]  # every Linux user -> home
    kept: dict[str, dict]  # the instructor's handout by team name (known secrets)
    db: DbState
    in_game: dict[str, bool]  # the game's teams -> active
    taken: set[int]  # ports in use or assigned to a team
    present: set[str]  # the starter folders (real folders) and .env files (any kind) there
    profiles: dict[str, str | None]  # each team user's login-shell snippet (None: none)
    unreadable: dict[str, str] = field(default_factory=dict)  # team user -> why (a timeout)


def home_of(users: dict[str, str], user: str) -> str:
    """The home folder of `user` (the default /home/USER for a user still to be created)."""
    return users.get(user) or f"/home/{user}"


class StarterPaths(NamedTuple):
    """The participant starter's folder in a home, and its .env."""

    folder: str
    env: str


def starter_paths(home: str) -> StarterPaths:
    """The participant starter's folder in `home` and its .env."""
    folder = f"{home}/{STARTER_DIR_NAME}"
    return StarterPaths(folder, f"{folder}/.env")


ENV_REL = f"{STARTER_DIR_NAME}/.env"  # the .env, inside the home


def profile_path(settings: Settings, user: str) -> str:
    """The login-shell snippet of team user `user` (root's file, 0644, no secret in it)."""
    return f"{settings.profile_dir}/workshop-{user}.sh"


def present_in_homes(
    ex: Executor, users: dict[str, str], teams: list[Team], timeout: float
) -> tuple[set[str], dict[str, str]]:
    """The starter folders (real folders only) and .env files (of any kind) in the homes.

    Looked at as each team user (files.path_kinds), never following a team's link as root.
    A team whose look fails (it stopped the command: the time limit) is in the second
    value, with the reason, and only that team is not provisioned.
    """
    present, unreadable = set(), {}
    for team in teams:
        if team.user not in users:
            continue
        home = users[team.user]
        folder, env = starter_paths(home)
        try:
            kinds = path_kinds(ex, team.user, home, [STARTER_DIR_NAME, ENV_REL], timeout)
        except ExecError as exc:
            unreadable[team.user] = str(exc)
            continue
        if kinds[STARTER_DIR_NAME] == "dir":
            present.add(folder)
        if kinds[ENV_REL] != "absent":
            present.add(env)
    return present, unreadable


def system_users(ex: Executor) -> dict[str, str]:
    """Every user on the server, name -> home."""
    _, out, _ = ex.run(["getent", "passwd"], root=False)
    users = {}
    for line in out.splitlines():
        parts = line.split(":")
        if len(parts) >= 7:
            users[parts[0]] = parts[5]
    return users


def ports_in_use(ex: Executor) -> set[int]:
    """The TCP ports something listens on, from `ss -ltnH`."""
    _, out, _ = ex.run(["ss", "-ltnH"], root=False)
    ports = set()
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 4 and cols[3].rpartition(":")[2].isdigit():
            ports.add(int(cols[3].rpartition(":")[2]))
    return ports


def psql_lines(ex: Executor, settings: Settings, db: str, sql: str) -> list[str]:
    """Run `sql` as the database admin in `db`; the output rows (unaligned, tuples only)."""
    _, out, _ = ex.run([*settings.psql(db), "-A", "-t", "-q"], stdin=sql, root=False)
    return [line for line in out.splitlines() if line]


def db_state(ex: Executor, settings: Settings) -> DbState:
    """Roles and schemas with the prefix, and whether the shared set-up is there."""
    state = DbState()
    sql = pgsql.state_sql(settings.prefix) + pgsql.database_sql(settings.workshop_db)
    for row in psql_lines(ex, settings, "postgres", sql):
        kind, _, name = row.partition("|")
        if kind == "role":
            state.roles.add(name)
        elif kind == "schema":
            state.schemas.add(name)
        elif kind == "base":
            state.base_role = True
        elif kind == "db":
            state.workshop_db = True
    if state.workshop_db:  # the teams' schemas are in the workshop database
        for row in psql_lines(ex, settings, settings.workshop_db, pgsql.state_sql(settings.prefix)):
            kind, _, name = row.partition("|")
            if kind == "schema":
                state.schemas.add(name)
    return state


def has_workshop_db(ex: Executor, settings: Settings) -> bool:
    """Whether the workshop database exists (a schema can only be dropped inside it)."""
    return bool(psql_lines(ex, settings, "postgres", pgsql.database_sql(settings.workshop_db)))


def read_state(
    ex: Executor,
    settings: Settings,
    registry: dict[str, Record],
    users: dict[str, str],
    teams: list[Team],
) -> State:
    """The rest of the state, once the roster is validated against the registry and users."""
    kept = handout.load(settings.handout_dir)
    db = db_state(ex, settings)
    in_game = game_teams(ex, settings)
    assigned = {port for t in registry.values() for port in t.ports() if port}
    taken = ports_in_use(ex) | assigned
    present, unreadable = present_in_homes(ex, users, teams, settings.team_timeout)
    profiles = {t.user: read_file(ex, profile_path(settings, t.user)) for t in teams}
    return State(registry, users, kept, db, in_game, taken, present, profiles, unreadable)
