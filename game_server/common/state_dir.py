"""Where the game keeps private files on this machine: the handout and the exports.

Both hold secrets or every team's data (passwords, tokens, each request's label), so they
default to a private folder of the user who runs the command, never the current folder
(a checkout that could be committed, or a folder a team can read): `GAME_STATE_DIR` when
set, else `$XDG_STATE_HOME/game-server`, else `~/.local/state/game-server`. Each folder is
created mode 0700.
"""

import os
import time
from pathlib import Path

from game_server.common import settings


def state_dir() -> Path:
    """The private state folder of the user running the command (not created here)."""
    chosen = settings.get(settings.STATE_DIR)
    if chosen:
        return chosen
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "game-server"


def default_path(name: str) -> str:
    """`name` under the state folder, as the default of a command-line option."""
    return str(state_dir() / name)


def private_dir(path: str | Path) -> Path:
    """Create `path` (and missing parents) readable by its owner only; the path."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    old = os.umask(0o077)
    try:
        path.mkdir(parents=True, exist_ok=True)
    finally:
        os.umask(old)
    for created in missing:
        created.chmod(0o700)
    return path


def new_export_dir() -> Path:
    """A new, private `exports/<date-time>` folder under the state folder (never reused)."""
    base = private_dir(state_dir() / "exports")
    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    path, n = base / stamp, 1
    while path.exists():
        n += 1
        path = base / f"{stamp}-{n}"
    return private_dir(path)
