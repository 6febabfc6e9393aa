"""Carrying out a team's plan: one function per step, run in the plan's order.

Each step function takes (executor, settings, plan, state) and does one change; `apply_plan`
runs the plan's steps in order, calling `before(i)` ahead of step i (provision.py journals
it there). Every step may be done twice (an interrupted run is finished by doing its steps
again). The shared database set-up (init SQL) is applied first when a team's schema needs
it and it is missing.
"""

import logging
import re
from collections.abc import Callable
from pathlib import Path

from game_server.accounts import pgsql
from game_server.accounts.config import AccountsError, Settings
from game_server.accounts.executors import Executor
from game_server.accounts.files import as_team, write_file
from game_server.accounts.game_cli import enable_in_game, new_game_token, register_in_game
from game_server.accounts.login_shell import profile_text
from game_server.accounts.plan import Step, TeamPlan, step_labels
from game_server.accounts.starter import env_text, starter_tarball
from game_server.accounts.state import (
    State,
    db_state,
    home_of,
    profile_path,
    starter_paths,
    system_users,
)

log = logging.getLogger(__name__)


def apply_init_sql(ex: Executor, settings: Settings) -> None:
    """Apply the shared init SQL (databases, game role, base role, hardening; idempotent)."""
    argv = [
        *settings.psql("postgres"),
        "-q",
        "-v",
        f"workshop_db={settings.workshop_db}",
        "-v",
        f"game_db={settings.game_db}",
        "-v",
        f"game_role={settings.game_role}",
    ]
    init_sql = Path(settings.init_sql)
    if not init_sql.is_file():
        raise AccountsError(f"no init SQL at {init_sql}")
    ex.run(argv, stdin=init_sql.read_text(), root=False)
    log.info("applied shared init sql workshop_db=%s", settings.workshop_db)


def _home(plan: TeamPlan, state: State) -> str:
    """The team user's home folder."""
    return home_of(state.users, plan.team.user)


def assign_ports(ex: Executor, settings: Settings, plan: TeamPlan, state: State) -> None:
    """Nothing to run: the ports are in the team's record, written to the registry after."""


def gecos(name: str) -> str:
    """The user's comment for team `name`: what /etc/passwd can hold (no ':', ',', control)."""
    return "workshop team " + re.sub(r"[:,\\\x00-\x1f\x7f]", "?", name)


def create_user(ex: Executor, settings: Settings, plan: TeamPlan, state: State) -> None:
    """Create the Linux user with its own group, bash, and a home only it can enter."""
    team = plan.team
    if team.user not in state.users:  # an interrupted run may have created it already
        ex.run(
            [
                "useradd",
                "--create-home",
                "--user-group",
                "--shell",
                "/bin/bash",
                "--comment",
                gecos(team.name),
                "--",
                team.user,
            ]
        )
        state.users = system_users(ex)
    home = _home(plan, state)
    ex.run(as_team(team.user, home, ["chmod", "0700", "--", home]), timeout=settings.team_timeout)


def set_password(ex: Executor, settings: Settings, plan: TeamPlan, state: State) -> None:
    """Set the Linux login's password (on chpasswd's stdin, never in argv)."""
    ex.run(["chpasswd"], stdin=f"{plan.team.user}:{plan.secrets.password}\n")


def write_ssh_key(ex: Executor, settings: Settings, plan: TeamPlan, state: State) -> None:
    """Install the roster's SSH key as the team's authorized_keys (as the team user)."""
    user, home = plan.team.user, _home(plan, state)
    mkdir = as_team(user, home, ["mkdir", "-p", "-m", "700", "--", f"{home}/.ssh"])
    ex.run(mkdir, timeout=settings.team_timeout)
    write_file(
        ex,
        f"{home}/.ssh/authorized_keys",
        f"{plan.team.ssh_key}\n",
        "600",
        (user, home),
        settings.team_timeout,
    )


def _ensure_shared_setup(ex: Executor, settings: Settings, state: State) -> None:
    """Apply the init SQL if the workshop database or the base role is missing."""
    if not state.db.ready:
        apply_init_sql(ex, settings)
        state.db = db_state(ex, settings)


def _db_password(plan: TeamPlan) -> str:
    """The database password the plan made with the step that sets it."""
    if not plan.secrets.db_password:
        raise AccountsError(f"no database password planned for {plan.team.user}")
    return plan.secrets.db_password


def create_role_and_schema(ex: Executor, settings: Settings, plan: TeamPlan, state: State) -> None:
    """Create the team's PostgreSQL role (password as a SCRAM verifier) and private schema."""
    _ensure_shared_setup(ex, settings, state)
    user = plan.team.user
    sql = pgsql.create_team_sql(user, user, pgsql.scram_verifier(_db_password(plan)))
    ex.run(settings.psql(settings.workshop_db), stdin=sql, root=False)


def create_schema(ex: Executor, settings: Settings, plan: TeamPlan, state: State) -> None:
    """Create the team's private schema again (its role is still there)."""
    _ensure_shared_setup(ex, settings, state)
    sql = pgsql.create_schema_sql(plan.team.user, plan.team.user)
    ex.run(settings.psql(settings.workshop_db), stdin=sql, root=False)


def set_database_password(ex: Executor, settings: Settings, plan: TeamPlan, state: State) -> None:
    """Give the team's role a new password."""
    sql = pgsql.set_password_sql(plan.team.user, pgsql.scram_verifier(_db_password(plan)))
    ex.run(settings.psql(settings.workshop_db), stdin=sql, root=False)


def register(ex: Executor, settings: Settings, plan: TeamPlan, state: State) -> None:
    """Register the team in the game with its API's URL; keep the token."""
    port = plan.record.api_port
    plan.secrets.token = register_in_game(ex, settings, plan.team.name, port, plan.team.user)


def enable(ex: Executor, settings: Settings, plan: TeamPlan, state: State) -> None:
    """Let the team play again (it was disabled by `users delete`)."""
    enable_in_game(ex, settings, plan.team.name)


def new_token(ex: Executor, settings: Settings, plan: TeamPlan, state: State) -> None:
    """Issue the team a new game token; keep it."""
    plan.secrets.token = new_game_token(ex, settings, plan.team.name)


def copy_starter(ex: Executor, settings: Settings, plan: TeamPlan, state: State) -> None:
    """Unpack the participant starter into the home, as the team user."""
    home = _home(plan, state)
    ex.run(
        as_team(
            plan.team.user,
            home,
            ["tar", "-xzf", "-", "-C", home, "--no-same-owner", "--no-same-permissions"],
        ),
        stdin=starter_tarball(settings),
        timeout=settings.team_timeout,
    )


def write_env(ex: Executor, settings: Settings, plan: TeamPlan, state: State) -> None:
    """Write the starter's .env (0600, as the team user) with the plan's secrets."""
    s = plan.secrets
    home = _home(plan, state)
    _, env_path = starter_paths(home)
    text = env_text(settings, plan.team.name, plan.record, s.token, s.db_password)
    write_file(ex, env_path, text, "600", (plan.team.user, home), settings.team_timeout)


def write_profile(ex: Executor, settings: Settings, plan: TeamPlan, state: State) -> None:
    """Write the team's login-shell snippet (root's, 0644, no secret: login_shell.py)."""
    user = plan.team.user
    ex.run(["mkdir", "-p", "-m", "755", "--", settings.profile_dir])
    text = profile_text(settings, user, _home(plan, state))
    write_file(ex, profile_path(settings, user), text, "644")
    state.profiles[user] = text


StepFunction = Callable[[Executor, Settings, TeamPlan, State], None]
STEPS: dict[Step, StepFunction] = {
    Step.ASSIGN_PORTS: assign_ports,
    Step.CREATE_USER: create_user,
    Step.SET_PASSWORD: set_password,
    Step.WRITE_SSH_KEY: write_ssh_key,
    Step.CREATE_ROLE_AND_SCHEMA: create_role_and_schema,
    Step.CREATE_SCHEMA: create_schema,
    Step.SET_DATABASE_PASSWORD: set_database_password,
    Step.REGISTER_IN_GAME: register,
    Step.ENABLE_IN_GAME: enable,
    Step.NEW_GAME_TOKEN: new_token,
    Step.COPY_STARTER: copy_starter,
    Step.WRITE_ENV: write_env,
    Step.WRITE_PROFILE: write_profile,
}


def apply_plan(
    ex: Executor,
    settings: Settings,
    plan: TeamPlan,
    state: State,
    before: Callable[[int], None] = lambda i: None,
) -> None:
    """Carry out one team's steps, in order (only the differences); `before(i)` ahead of each."""
    for i, step in enumerate(plan.steps):
        before(i)
        STEPS[step](ex, settings, plan, state)
    user = plan.team.user
    log.info(
        "team provisioned team=%s user=%s steps=%s",
        plan.team.name,
        user,
        ",".join(step_labels(plan)),
    )
