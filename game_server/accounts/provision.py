"""`users create`: plan every team of the roster, apply only the differences, record them.

Plan (plan.py, from the actual state in state.py), then apply (apply.py) team by team.
Before each step acts, the team's record goes to the registry on the server with a journal
(registry.py): a run that fails or is killed midway leaves the team recorded as ours and
interrupted, so the next `users create` finishes it and `users delete` undoes it. When a
team's steps are done, its secrets go to the instructor's handout (handout.py), then its
record is written without the journal.

A team that fails (also one that stops a command run as it: each has the team's time limit,
`Settings.team_timeout`) does not stop the others: its line says at which step and why, the run
goes on with the next team, and the command fails at the end. Secrets (the Linux and
database passwords, the game token) are kept only in the handout and in the team's
`participant_starter/.env` (0600).
"""

from collections.abc import Callable
from typing import Any

from game_server.accounts import handout, limits
from game_server.accounts.apply import apply_plan
from game_server.accounts.config import AccountsError, Settings
from game_server.accounts.executors import ExecError, Executor
from game_server.accounts.plan import Step, TeamPlan, describe, make_plan, now
from game_server.accounts.progress import Progress
from game_server.accounts.registry import completed, interrupted_at, journaled, write_registry
from game_server.accounts.starter import check_kit, database_url
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
    check_kit(settings)
    plans, state = make_plan(ex, settings, roster_path)
    for plan in plans:
        echo(("would: " if dry_run and plan.steps else "") + describe(plan))
    failed = [plan.team.name for plan in plans if plan.failed]  # each told in its line
    if any(Step.COPY_STARTER in plan.steps for plan in plans):
        echo(f"the participant starter in new homes: level {settings.starter_level}")
    if dry_run:
        echo(f"kit: the starter from {settings.starter_dir}, the init SQL {settings.init_sql}")
        return plans
    to_apply = [plan for plan in plans if not plan.failed]
    progress = Progress(sum(1 for plan in to_apply if plan.steps), echo)
    try:
        for plan in to_apply:
            if plan.steps:
                progress.next(f"{plan.team.user} ({plan.team.name}): provisioning")
            try:
                provision_team(ex, settings, plan, state)
            except (AccountsError, ExecError) as exc:
                failed.append(plan.team.name)
                echo(failure_line(plan, state, exc))
    finally:  # whatever was done is recorded, also when a later team fails
        paths = handout.save(settings.handout_dir, state.kept)
    echo(f"handout: {paths[0]} and {paths[1]} (mode 0600, keep them private)")
    if failed:
        raise AccountsError(
            f"{len(failed)} team(s) not finished: {', '.join(failed)} (above); run "
            "`users create` again to finish them, or `users delete` to undo them"
        )
    return plans


def failure_line(plan: TeamPlan, state: State, exc: Exception) -> str:
    """One line: which team failed, at which step, why, and what to do."""
    record = state.registry.get(plan.team.name)
    step = (interrupted_at(record) if record else None) or "planning"
    return f"{plan.team.user} ({plan.team.name}): failed at {step}: {exc}"


def provision_team(ex: Executor, settings: Settings, plan: TeamPlan, state: State) -> None:
    """Apply one team's plan, journaled step by step; then the handout, then the registry."""
    name = plan.team.name
    if plan.steps:
        labels, started = [s.value for s in plan.steps], now()

        def journal(done: int) -> None:  # before step `done` acts
            state.registry[name] = journaled(plan.record, started, labels, done)
            write_registry(ex, settings, state.registry)

        apply_plan(ex, settings, plan, state, before=journal)
    limits.apply_team(ex, settings, plan.team.user)  # idempotent: also fixes changed limits
    old = state.kept.get(name, {})
    state.kept[name] = with_known_secrets(handout_entry(settings, plan), old)
    handout.save(settings.handout_dir, state.kept)
    before = state.registry.get(name)
    state.registry[name] = completed(plan.record)
    if state.registry[name] != before:
        write_registry(ex, settings, state.registry)


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
        "api_port": r.api_port,
        "jupyter_port": r.jupyter_port,
        "debug_port": r.debug_port,
        "database_url": database_url(settings, r.role, s.db_password)
        if s.db_password
        else handout.NOT_STORED,
        "game_url": settings.game_url,
        "token": s.token or handout.NOT_STORED,
    }
