"""The provisioning registry on the server: which teams `users create` made, and how.

Default /var/lib/game-server/accounts.json, mode 0600 in a 0700 folder (root's), written
atomically. Per team: the Linux user, ports, role, schema and creation time; never a
secret (those are only in the instructor's handout and the team's `.env`). `users delete`
removes only teams listed here.

The journal: before each step of a team's plan acts, its record is written with
`"journal": {"started": TIME, "steps": [...], "done": N}` (the plan's steps and how many
are finished), and when the team is complete the journal is taken out. So a team is in the
registry, and so ours, before anything of it exists: a run that fails or is killed midway
leaves a record with a journal, which the next `users create` finishes (plan.redo_steps)
and `users delete` undoes like any team.
"""

import json
from pathlib import Path
from typing import Any

from game_server.accounts.config import AccountsError, Settings
from game_server.accounts.executors import Executor
from game_server.accounts.files import read_file, write_file

# One team's record: name, user, api_port, jupyter_port, debug_port, role, schema, created,
# and while its provisioning is under way, journal (JSON).
Record = dict[str, Any]
JOURNAL = "journal"


def read_registry(ex: Executor, settings: Settings) -> dict[str, Record]:
    """The provisioned teams by name, from the registry on the server ({} if none yet)."""
    text = read_file(ex, settings.registry)
    if text is None:
        return {}
    try:
        return {t["name"]: t for t in json.loads(text)["teams"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise AccountsError(f"{settings.registry}: not a provisioning registry: {exc}") from None


def write_registry(ex: Executor, settings: Settings, teams: dict[str, Record]) -> None:
    """Write the registry (mode 0600, atomically), creating its folder (0700) if needed."""
    folder = str(Path(settings.registry).parent)
    ex.run(["mkdir", "-p", "-m", "700", "--", folder])
    rows = [teams[n] for n in sorted(teams)]
    write_file(ex, settings.registry, json.dumps({"version": 1, "teams": rows}, indent=2) + "\n")


def list_teams(ex: Executor, settings: Settings) -> list[Record]:
    """The provisioned teams from the registry, by name."""
    return [t for _, t in sorted(read_registry(ex, settings).items())]


def journal_steps(record: Record) -> list[str]:
    """The steps (as words) of the run that was interrupted on this team ([] if none was)."""
    journal = record.get(JOURNAL)
    steps = journal.get("steps") if isinstance(journal, dict) else None
    return [s for s in steps if isinstance(s, str)] if isinstance(steps, list) else []


def interrupted_at(record: Record) -> str | None:
    """The step an interrupted run was at (None when the team is complete)."""
    journal = record.get(JOURNAL)
    if not isinstance(journal, dict):
        return None
    steps, done = journal_steps(record), journal.get("done", 0)
    return steps[done] if isinstance(done, int) and 0 <= done < len(steps) else "the end"


def journaled(record: Record, started: str, steps: list[str], done: int) -> Record:
    """`record` with its journal: the plan's `steps`, of which `done` are finished."""
    return {**record, JOURNAL: {"started": started, "steps": steps, "done": done}}


def completed(record: Record) -> Record:
    """`record` without its journal (the team is complete)."""
    return {k: v for k, v in record.items() if k != JOURNAL}
