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

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from game_server.accounts.config import AccountsError, Settings
from game_server.accounts.executors import Executor
from game_server.accounts.files import read_file, write_file


@dataclass
class Record:
    """One team's record, its JSON object in the registry key for key. A key missing from
    the file (an older file has no debug_port) reads as its default (0: no port yet, "")
    and stays missing when written; keys this version does not know are kept in `extra`
    and written back."""

    name: str
    user: str
    api_port: int = 0
    jupyter_port: int = 0
    debug_port: int = 0
    role: str = ""
    schema: str = ""
    created: str = ""
    journal: dict[str, Any] | None = None  # while its provisioning is under way
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Record":
        """The record of one JSON object (TypeError without a name or user)."""
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**{k: v for k, v in data.items() if k in known}, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: the keys that have a value (not the default), then the unknown."""
        fields = [f for f in dataclasses.fields(self) if f.name != "extra"]
        values = {f.name: getattr(self, f.name) for f in fields}
        unset = {f.name: f.default for f in fields}
        known = {k: v for k, v in values.items() if v is not None and v != unset[k]}
        return {**known, **self.extra}

    def ports(self) -> tuple[int, int, int]:
        """API, Jupyter and debug ports (0: not assigned yet)."""
        return self.api_port, self.jupyter_port, self.debug_port


def read_registry(ex: Executor, settings: Settings) -> dict[str, Record]:
    """The provisioned teams by name, from the registry on the server ({} if none yet)."""
    text = read_file(ex, settings.registry)
    if text is None:
        return {}
    try:
        records = [Record.from_dict(t) for t in json.loads(text)["teams"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise AccountsError(f"{settings.registry}: not a provisioning registry: {exc}") from None
    return {r.name: r for r in records}


def write_registry(ex: Executor, settings: Settings, teams: dict[str, Record]) -> None:
    """Write the registry (mode 0600, atomically), creating its folder (0700) if needed."""
    folder = str(Path(settings.registry).parent)
    ex.run(["mkdir", "-p", "-m", "700", "--", folder])
    rows = [teams[n].to_dict() for n in sorted(teams)]
    write_file(ex, settings.registry, json.dumps({"version": 1, "teams": rows}, indent=2) + "\n")


def list_teams(ex: Executor, settings: Settings) -> list[Record]:
    """The provisioned teams from the registry, by name."""
    return [t for _, t in sorted(read_registry(ex, settings).items())]


def journal_steps(record: Record) -> list[str]:
    """The steps (as words) of the run that was interrupted on this team ([] if none was)."""
    journal = record.journal
    steps = journal.get("steps") if isinstance(journal, dict) else None
    return [s for s in steps if isinstance(s, str)] if isinstance(steps, list) else []


def interrupted_at(record: Record) -> str | None:
    """The step an interrupted run was at (None when the team is complete)."""
    journal = record.journal
    if not isinstance(journal, dict):
        return None
    steps, done = journal_steps(record), journal.get("done", 0)
    return steps[done] if isinstance(done, int) and 0 <= done < len(steps) else "the end"


def journaled(record: Record, started: str, steps: list[str], done: int) -> Record:
    """`record` with its journal: the plan's `steps`, of which `done` are finished."""
    return dataclasses.replace(record, journal={"started": started, "steps": steps, "done": done})


def completed(record: Record) -> Record:
    """`record` without its journal (the team is complete)."""
    return dataclasses.replace(record, journal=None)
