"""Keep the kernel's OOM killer off the game and PostgreSQL: a team's process goes first.

Linux picks the process to kill by its `oom_score_adj` (-1000 never, 1000 first). The game
lowers its own at start (`game-server run`, when it may: as root, or under systemd's
`OOMScoreAdjust`, which setup_server.sh writes into the unit); PostgreSQL's postmaster is
lowered by the drop-in setup_server.sh writes where systemd runs, else by hand
(`game-server doctor` says how; the instructor does it, never a restart). Its backends
reset theirs to 0 (PG_OOM_ADJUST_VALUE), so a runaway query is still killable.
"""

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

PROTECTED = -900  # the game and the postmaster: last to go, still not "never"
SAFE_ENOUGH = -500


def score_adj(pid: int | str) -> int | None:
    """The process's oom_score_adj, or None when it is gone or unreadable."""
    try:
        return int(Path(f"/proc/{pid}/oom_score_adj").read_text())
    except (OSError, ValueError):
        return None


def protect_self(value: int = PROTECTED) -> bool:
    """Lower this process's oom_score_adj to `value` (its children inherit it), if allowed."""
    try:
        Path("/proc/self/oom_score_adj").write_text(f"{value}\n")
    except OSError as exc:
        log.info("oom_score_adj unchanged (%s): the OOM killer may pick the game", exc.strerror)
        return False
    log.info("oom_score_adj=%d: the OOM killer picks a team's process before the game", value)
    return True


def _comm_and_parent(pid: str) -> tuple[str, str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    return comm, stat[stat.rindex(")") + 2 :].split()[1]


def postmasters() -> list[int]:
    """PostgreSQL's postmasters on this machine: `postgres` processes whose parent is not."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        me = _comm_and_parent(entry)
        if me and me[0] == "postgres":
            parent = _comm_and_parent(me[1])
            if not parent or parent[0] != "postgres":
                found.append(int(entry))
    return sorted(found)


def warnings() -> list[str]:
    """One line per postmaster the OOM killer could pick before a team's process."""
    lines = []
    for pid in postmasters():
        adj = score_adj(pid)
        if adj is not None and adj > SAFE_ENOUGH:
            lines.append(
                f"PostgreSQL's postmaster (pid {pid}) has oom_score_adj {adj}: the OOM killer "
                f"could pick it before a team's notebook: `echo {PROTECTED} > "
                f"/proc/{pid}/oom_score_adj` as root now (no restart), and "
                "`sudo scripts/setup_server.sh` where systemd runs"
            )
    return lines
