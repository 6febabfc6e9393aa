"""The plan of `users create`: each team's steps, from the roster against the actual state.

`make_plan` reads the actual state through an executor (state.py), validates the roster
against it, and lists for each team only the steps that differ from what the roster asks
for. That makes `create` idempotent (a second run plans nothing: "unchanged" for every
team) and gives `--dry-run` for free (print the plan, apply nothing). Teams in the registry
but not in the roster are left alone; `delete` removes them.

A team whose registry record still holds a journal (registry.py) was interrupted: its plan
also does again every step the interrupted run meant to do (each step is safe to do twice),
with new secrets where that run was setting one, since they were lost with it.
"""

import datetime as dt
import secrets
import string
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import NamedTuple

from game_server.accounts import handout, roster
from game_server.accounts.config import AccountsError, Settings
from game_server.accounts.executors import ExecError, Executor
from game_server.accounts.files import RefusedFile, read_team_file
from game_server.accounts.login_shell import profile_text
from game_server.accounts.registry import Record, journal_steps, read_registry
from game_server.accounts.starter import parse_env, url_password
from game_server.accounts.state import (
    ENV_REL,
    DbState,
    State,
    home_of,
    read_state,
    starter_paths,
    system_users,
)

PASSWORD_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")


class Step(Enum):
    """One change to a team's accounts, declared in the order they are carried out."""

    ASSIGN_PORTS = "assign ports"
    CREATE_USER = "create user"
    SET_PASSWORD = "set password"
    WRITE_SSH_KEY = "write ssh key"
    CREATE_ROLE_AND_SCHEMA = "create role and schema"
    CREATE_SCHEMA = "create schema"
    SET_DATABASE_PASSWORD = "set database password"
    REGISTER_IN_GAME = "register in game"
    ENABLE_IN_GAME = "enable in game"
    NEW_GAME_TOKEN = "new game token"
    COPY_STARTER = "copy starter"
    WRITE_ENV = "write .env"
    WRITE_PROFILE = "write login profile"


def redo_steps(record: Record) -> set[Step]:
    """The steps of the run that was interrupted on this team (its journal), to do again."""
    values = {step.value: step for step in Step}
    return {values[v] for v in journal_steps(record) if v in values}


@dataclass
class Secrets:
    """A team's secrets: known from the handout, or new ones the plan made for its steps."""

    password: str | None = None  # the Linux login's
    db_password: str | None = None  # the PostgreSQL role's
    token: str | None = None  # the game's team token


@dataclass
class TeamPlan:
    """What `create` will do for one team: the steps, in order, and the team's record."""

    team: roster.Team
    record: Record  # the registry record (ports etc.)
    secrets: Secrets
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # shown, but nothing to change
    failed: str | None = None  # why the team cannot be planned (it alone is not provisioned)


def new_password(length: int = 16) -> str:
    """A Linux login password: letters and digits, no look-alikes (about 93 bits)."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def now() -> str:
    """The current time, ISO 8601 in UTC."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def allocate(wanted: str, taken: set[int], span: tuple[int, int]) -> int:
    """The lowest free port of `span` not in `taken`."""
    for port in range(span[0], span[1] + 1):
        if port not in taken:
            return port
    raise AccountsError(f"no free {wanted} port left in {span[0]}-{span[1]}")


class Plans(NamedTuple):
    """Every team's plan, in the roster's order, and the state they were planned on."""

    plans: list[TeamPlan]
    state: State


def make_plan(ex: Executor, settings: Settings, roster_path: str) -> Plans:
    """Read the actual state, validate the roster against it, and plan every team's steps."""
    registry = read_registry(ex, settings)
    users = system_users(ex)
    teams = load_teams(settings, roster_path, registry, users)
    state = read_state(ex, settings, registry, users, teams)
    return Plans([plan_team(ex, settings, team, state) for team in teams], state)


def load_teams(
    settings: Settings, roster_path: str, registry: dict[str, Record], users: dict[str, str]
) -> list[roster.Team]:
    """The roster's teams; refused when a team is provisioned under another user name."""
    ours = {t.user for t in registry.values()}
    try:
        teams = roster.load_roster(
            roster_path, prefix=settings.prefix, existing_users=set(users), ours=ours
        )
    except roster.RosterError as exc:
        raise AccountsError(str(exc)) from None
    for team in teams:
        known = registry.get(team.name)
        if known and known.user != team.user:
            raise AccountsError(
                f"{roster_path}:{team.line}: team {team.name!r} is provisioned "
                f"as {known.user!r}, not {team.user!r} (another prefix?)"
            )
    return teams


def known_secrets(old: dict) -> Secrets:
    """The secrets the instructor's handout holds for a team (none for "not stored")."""

    def value(key: str) -> str | None:
        v = old.get(key)
        return v if isinstance(v, str) and v and v != handout.NOT_STORED else None

    return Secrets(value("password"), value("db_password"), value("token"))


def plan_team(ex: Executor, settings: Settings, team: roster.Team, state: State) -> TeamPlan:
    """One team's steps, in the order they are carried out."""
    record = state.registry.get(team.name) or Record(team.name, team.user)
    plan = TeamPlan(team, replace(record), known_secrets(state.kept.get(team.name, {})))
    plan.failed = state.unreadable.get(team.user)
    if plan.failed is None:
        try:
            plan_steps(ex, settings, plan, state)
        except ExecError as exc:  # a command run as the team failed or was stopped by it
            plan.failed = str(exc)
    return plan


def plan_steps(ex: Executor, settings: Settings, plan: TeamPlan, state: State) -> None:
    """Fill in the plan's steps and notes (a team whose files cannot be read: ExecError)."""
    team = plan.team
    record = state.registry.get(team.name)  # as it was (plan.record gets the ports)
    redo = redo_steps(record) if record else set()
    if redo:
        plan.notes.append("interrupted before: finishing it")
    if not record or not all(record.ports()):
        assign_ports(settings, plan, state.taken)
    plan_user_steps(ex, settings, plan, state.users, redo)
    read_kept_env(ex, plan, state, settings.team_timeout)
    plan_database_steps(settings, plan, state.db, redo)
    if settings.game_cmd:
        new = not record or bool(redo & {Step.REGISTER_IN_GAME, Step.ENABLE_IN_GAME})
        plan_game_steps(plan, settings, state.in_game, new, redo)
    plan_home_steps(settings, plan, state, redo)
    plan.steps.sort(key=list(Step).index)


def assign_ports(settings: Settings, plan: TeamPlan, taken: set[int]) -> None:
    """Give a team the lowest free ports it lacks (API, Jupyter, debug) and its record."""
    spans = {
        "api_port": ("API", settings.api_ports),
        "jupyter_port": ("Jupyter", settings.jupyter_ports),
        "debug_port": ("debug", settings.api_ports),
    }
    for key, (wanted, span) in spans.items():
        if not getattr(plan.record, key):
            setattr(plan.record, key, allocate(wanted, taken, span))
            taken.add(getattr(plan.record, key))
    r, user = plan.record, plan.team.user
    r.name, r.user, r.role, r.schema = plan.team.name, user, user, user
    r.created = r.created or now()
    plan.steps.append(Step.ASSIGN_PORTS)


def plan_user_steps(
    ex: Executor, settings: Settings, plan: TeamPlan, users: dict[str, str], redo: set[Step]
) -> None:
    """The Linux user's steps: create it, set its password, install its SSH key."""
    team, exists = plan.team, plan.team.user in users
    if not exists or Step.CREATE_USER in redo:
        plan.steps.append(Step.CREATE_USER)
    if not exists or settings.rotate or redo & {Step.CREATE_USER, Step.SET_PASSWORD}:
        plan.secrets.password = new_password()
        plan.steps.append(Step.SET_PASSWORD)
    if team.ssh_key and (
        not exists
        or Step.WRITE_SSH_KEY in redo
        or not has_key(ex, plan, users[team.user], settings.team_timeout)
    ):
        plan.steps.append(Step.WRITE_SSH_KEY)


def has_key(ex: Executor, plan: TeamPlan, home: str, timeout: float) -> bool:
    """Whether the team's authorized_keys holds the roster's key (read as the team user)."""
    try:
        text = read_team_file(ex, plan.team.user, home, ".ssh/authorized_keys", timeout=timeout)
    except RefusedFile as exc:
        plan.notes.append(f"{exc}: writing it again")
        return False
    return plan.team.ssh_key in (text or "").splitlines()


def read_kept_env(ex: Executor, plan: TeamPlan, state: State, timeout: float) -> None:
    """Secrets the handout lacks, from the team's .env (read as the team user, if it is safe)."""
    s, user = plan.secrets, plan.team.user
    _, env = starter_paths(home_of(state.users, user))
    if (s.db_password and s.token) or env not in state.present:
        return
    try:
        text = read_team_file(ex, user, state.users[user], ENV_REL, timeout=timeout)
        old = parse_env(text or "")
    except RefusedFile as exc:
        plan.notes.append(f"{exc}: its secrets are not kept")
        return
    s.db_password = s.db_password or url_password(old.get("DATABASE_URL"))
    s.token = s.token or old.get("TEAM_TOKEN") or None


def plan_database_steps(settings: Settings, plan: TeamPlan, db: DbState, redo: set[Step]) -> None:
    """The PostgreSQL steps: create the role and schema, or the schema; a new password."""
    user = plan.team.user
    if user not in db.roles:
        plan.steps.append(Step.CREATE_ROLE_AND_SCHEMA)
        plan.secrets.db_password = secrets.token_urlsafe(18)
        return
    if user not in db.schemas:
        plan.steps.append(Step.CREATE_SCHEMA)
    lost = redo & {Step.CREATE_ROLE_AND_SCHEMA, Step.SET_DATABASE_PASSWORD}
    if settings.rotate or lost or not plan.secrets.db_password:
        plan.secrets.db_password = secrets.token_urlsafe(18)
        plan.steps.append(Step.SET_DATABASE_PASSWORD)


def plan_game_steps(
    plan: TeamPlan, settings: Settings, in_game: dict[str, bool], new: bool, redo: set[Step]
) -> None:
    """The game's steps of one team: register; or enable and/or issue a new token."""
    name = plan.team.name
    if name not in in_game:
        plan.steps.append(Step.REGISTER_IN_GAME)
        return
    if not in_game[name] and new:  # deleted by `users delete`, now created again
        plan.steps.append(Step.ENABLE_IN_GAME)
    elif not in_game[name]:  # disabled by hand (`teams disable`): the instructor's choice
        plan.notes.append("disabled in the game")
    lost = redo & {Step.REGISTER_IN_GAME, Step.ENABLE_IN_GAME, Step.NEW_GAME_TOKEN}
    if new or settings.rotate or lost or not plan.secrets.token:
        plan.steps.append(Step.NEW_GAME_TOKEN)


def plan_home_steps(settings: Settings, plan: TeamPlan, state: State, redo: set[Step]) -> None:
    """The home's steps: the starter if missing; the .env and login profile when changed."""
    user = plan.team.user
    home = home_of(state.users, user)
    folder, env = starter_paths(home)
    if folder not in state.present or Step.COPY_STARTER in redo:
        plan.steps.append(Step.COPY_STARTER)
    if env not in state.present or plan.steps or Step.WRITE_ENV in redo:
        plan.steps.append(Step.WRITE_ENV)
    if state.profiles.get(user) != profile_text(settings, user, home) or redo:
        plan.steps.append(Step.WRITE_PROFILE)


def step_labels(plan: TeamPlan) -> list[str]:
    """The plan's steps as words (the ports with the step that assigns them)."""
    ports = " " + "/".join(str(port) for port in plan.record.ports())
    return [s.value + (ports if s is Step.ASSIGN_PORTS else "") for s in plan.steps]


def describe(plan: TeamPlan) -> str:
    """One line: the team and what will change (or "unchanged"), or why it cannot be planned."""
    if plan.failed:
        return f"{plan.team.user} ({plan.team.name}): failed at planning: {plan.failed}"
    what = ", ".join(step_labels(plan)) if plan.steps else "unchanged"
    if plan.notes:
        what += f" (note: {', '.join(plan.notes)})"
    return f"{plan.team.user} ({plan.team.name}): {what}"
