"""`users create`: plan every team of the roster, apply only the differences, record them.

Plan (plan.py, from the actual state in state.py), then apply (apply.py) team by team: after
each team, its record goes to the registry on the server (registry.py) and its secrets to
the instructor's handout (handout.py), also when a later team fails. Secrets (the Linux and
database passwords, the game token) are kept only in the handout and in the team's
`participant_starter/.env` (0600).
"""

from collections.abc import Callable
from typing import Any

from game_server.accounts import handout
from game_server.accounts.apply import apply_plan
from game_server.accounts.config import Settings
from game_server.accounts.executors import Executor
from game_server.accounts.plan import Step, TeamPlan, describe, make_plan
from game_server.accounts.registry import write_registry
from game_server.accounts.starter import database_url
from game_server.accounts.state import State

SECRET_FIELDS = ("password", "db_password", "database_url", "token")


def create(
    ex: Executor,
    settings: Settings,
    roster_path: str,
    dry_run: bool = False,
    echo: Callable[[str], Any] = print,
) -> list[TeamPlan]:
    """Provision every team of the roster (only what differs); print one line per team."""
    plans, state = make_plan(ex, settings, roster_path)
    for plan in plans:
        echo(("would: " if dry_run and plan.steps else "") + describe(plan))
    if any(Step.COPY_STARTER in plan.steps for plan in plans):
        echo(f"the participant starter in new homes: level {settings.starter_level}")
    if dry_run:
        return plans
    try:
        for plan in plans:
            provision_team(ex, settings, plan, state)
    finally:  # whatever was done is recorded, also when a later team fails
        paths = handout.save(settings.handout_dir, state.kept)
    echo(f"handout: {paths[0]} and {paths[1]} (mode 0600, keep them private)")
    return plans


def provision_team(ex: Executor, settings: Settings, plan: TeamPlan, state: State) -> None:
    """Apply one team's plan, then record it in the registry and the handout."""
    if plan.steps:
        apply_plan(ex, settings, plan, state)
    state.registry[plan.team.name] = plan.record
    if plan.steps:
        write_registry(ex, settings, state.registry)
    old = state.kept.get(plan.team.name, {})
    state.kept[plan.team.name] = with_known_secrets(handout_entry(settings, plan), old)


def with_known_secrets(entry: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """The new handout entry, with the old one's secrets where this run did not learn them."""
    unknown = [k for k in SECRET_FIELDS if entry.get(k) in (handout.NOT_STORED, None)]
    return {**entry, **{k: old[k] for k in unknown if old.get(k)}}


def handout_entry(settings: Settings, plan: TeamPlan) -> dict[str, Any]:
    """The team's handout record: login, password, ports, database URL, token."""
    r, s = plan.record, plan.secrets
    port = "" if settings.ssh_port == 22 else f" -p {settings.ssh_port}"
    return {
        "name": plan.team.name,
        "members": plan.team.members,
        "user": plan.team.user,
        "ssh": f"ssh {plan.team.user}@{settings.ssh_host}{port}",
        "password": s.password or handout.NOT_STORED,
        "db_password": s.db_password,
        "api_port": r["api_port"],
        "jupyter_port": r["jupyter_port"],
        "database_url": database_url(settings, r["role"], s.db_password)
        if s.db_password
        else handout.NOT_STORED,
        "game_url": settings.game_url,
        "token": s.token or handout.NOT_STORED,
    }
