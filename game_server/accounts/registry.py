"""The provisioning registry on the server: which teams `users create` made, and how.

Default /var/lib/game-server/accounts.json, mode 0600, written atomically. Per team: the
Linux user, ports, role, schema and creation time; never a secret (those are only in the
instructor's handout and the team's `.env`). `users delete` removes only teams listed here.
"""

import json
from pathlib import Path
from typing import Any

from game_server.accounts.config import AccountsError, Settings
from game_server.accounts.executors import Executor
from game_server.accounts.files import read_file, write_file

# One team's record: name, user, api_port, jupyter_port, role, schema, created (JSON).
Record = dict[str, Any]


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
    ex.run(["mkdir", "-p", "-m", "700", folder])
    rows = [teams[n] for n in sorted(teams)]
    write_file(ex, settings.registry, json.dumps({"version": 1, "teams": rows}, indent=2) + "\n")


def list_teams(ex: Executor, settings: Settings) -> list[Record]:
    """The provisioned teams from the registry, by name."""
    return [t for _, t in sorted(read_registry(ex, settings).items())]
