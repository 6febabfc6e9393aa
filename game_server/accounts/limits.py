"""Fair shares: each team's CPU share, memory ceiling and process limit (`users create/delete`).

A team's runaway notebook (a grid search on every core, a frame that does not fit) must
slow only that team, and be the one the OOM killer picks. What the server offers decides
how (`mechanism`, which `game-server doctor` reports):

- `systemd`: a drop-in for the team's `user-UID.slice` (CPUWeight, MemoryMax, TasksMax);
  every login (pam_systemd) lands in that slice.
- `cgroup-v1` (containers without systemd, like the CI): a cgroup `workshop-USER` in the
  cpu, memory and pids hierarchies with the same limits (cpu.shares = weight x 1024 / 100),
  whose `cgroup.procs` the team may write, and a login-shell snippet
  (`/etc/profile.d/workshop-USER.limits.sh`) that moves each login shell into it, so
  everything started from it (tmux, the API, Jupyter, training) inherits the limits.
  Each team's cgroup sits at the top of its hierarchy: it weighs as much as one busy
  process of the game, whatever the team starts.
- `none`: only the process limit below.

Everywhere, a pam_limits file (`/etc/security/limits.d/workshop-USER.conf`) caps the
team's processes (nproc) where PAM reads it. Every function runs through the executor (on
this machine or over SSH), is idempotent, and undoes nothing that is not the team's.
"""

import logging

from game_server.accounts.config import Settings, TeamLimits
from game_server.accounts.executors import Executor

log = logging.getLogger(__name__)

SYSTEMD, CGROUP_V1, NONE = "systemd", "cgroup-v1", "none"
CGROUP_ROOT = "/sys/fs/cgroup"
LIMITS_D = "/etc/security/limits.d"
V1_CONTROLLERS = ("cpu", "memory", "pids")

_PROBE = r"""
if [ -d /run/systemd/system ]; then echo systemd; exit 0; fi
root=$1
for c in cpu memory pids; do
  [ -w "$root/$c" ] && [ -f "$root/$c/cgroup.procs" ] || { echo none; exit 0; }
done
echo cgroup-v1
"""

# $1 cgroup root, $2 user, $3 cpu.shares, $4 memory bytes, $5 pids.max
_V1_APPLY = r"""
set -e
root=$1 user=$2 group=workshop-$2
for c in cpu memory pids; do
  mkdir -p "$root/$c/$group"
  chown "$user" "$root/$c/$group/cgroup.procs" "$root/$c/$group/tasks"
done
echo "$3" > "$root/cpu/$group/cpu.shares"
m=$root/memory/$group
# memsw (memory + swap) must stay >= the memory limit: lift it, set both, in that order.
[ -f "$m/memory.memsw.limit_in_bytes" ] && echo -1 > "$m/memory.memsw.limit_in_bytes"
echo "$4" > "$m/memory.limit_in_bytes"
[ -f "$m/memory.memsw.limit_in_bytes" ] && echo "$4" > "$m/memory.memsw.limit_in_bytes"
echo "$5" > "$root/pids/$group/pids.max"
"""

# $1 cgroup root, $2 user: move what is left to the top, then remove the team's cgroups.
_V1_REMOVE = r"""
root=$1 group=workshop-$2
for c in cpu memory pids; do
  d=$root/$c/$group
  [ -d "$d" ] || continue
  for _ in 1 2 3 4 5; do
    while read -r pid; do
      echo "$pid" > "$root/$c/cgroup.procs" 2>/dev/null
    done < "$d/cgroup.procs"
    rmdir "$d" 2>/dev/null && break
    sleep 0.2
  done
  [ ! -d "$d" ] || { echo "cannot remove $d" >&2; exit 1; }
done
"""

_JOIN = """# Written by `game-server users create` for {user} (limits.py); `users delete` removes
# it. Moves {user}'s login shells into the team's cgroups (its CPU share, memory ceiling and
# process limit): everything started from the shell inherits them.
if [ "$(id -un 2>/dev/null)" = {user} ]; then
  for _gs_c in {controllers}; do
    _gs_p={root}/$_gs_c/workshop-{user}/cgroup.procs
    [ -w "$_gs_p" ] && echo $$ 2>/dev/null > "$_gs_p"
  done
  unset _gs_c _gs_p
fi
"""


def mechanism(ex: Executor, cgroup_root: str = CGROUP_ROOT) -> str:
    """How this server applies a team's limits: systemd, cgroup-v1, or none."""
    _, out, _ = ex.run(["sh", "-c", _PROBE, "sh", cgroup_root], root=False)
    return out.strip() or NONE


def cpu_shares(limits: TeamLimits) -> int:
    """cgroup v1's cpu.shares for systemd's CPUWeight (100, the default, is 1024)."""
    return max(2, limits.cpu_weight * 1024 // 100)


def slice_text(limits: TeamLimits) -> str:
    """The drop-in of a team's user slice."""
    return (
        "# Written by `game-server users create` (limits.py); `users delete` removes it.\n"
        f"[Slice]\nCPUWeight={limits.cpu_weight}\nMemoryMax={limits.memory_max_mb}M\n"
        f"MemorySwapMax=0\nTasksMax={limits.tasks_max}\n"
    )


def pam_text(user: str, limits: TeamLimits) -> str:
    """The team's pam_limits file: its process limit."""
    return (
        "# Written by `game-server users create` (limits.py); `users delete` removes it.\n"
        f"{user} hard nproc {limits.tasks_max}\n"
    )


def join_text(user: str, cgroup_root: str = CGROUP_ROOT) -> str:
    """The login-shell snippet that moves the team's login shells into its cgroups."""
    return _JOIN.format(user=user, root=cgroup_root, controllers=" ".join(V1_CONTROLLERS))


def join_path(settings: Settings, user: str) -> str:
    """Where the team's cgroup snippet goes (read by every login shell, after /etc/profile)."""
    return f"{settings.profile_dir}/workshop-{user}.limits.sh"


def _uid(ex: Executor, user: str) -> str:
    return ex.run(["id", "-u", "--", user], root=False)[1].strip()


def _slice_dir(uid: str) -> str:
    return f"/etc/systemd/system/user-{uid}.slice.d"


def _write(ex: Executor, path: str, text: str, mode: str = "644") -> None:
    """Write a root-owned file atomically (via a temporary file in the same folder)."""
    script = 'umask 022; cat > "$1.tmp" && chmod "$2" "$1.tmp" && mv -f "$1.tmp" "$1"'
    ex.run(["sh", "-c", script, "sh", path, mode], stdin=text)


def apply_team(ex: Executor, settings: Settings, user: str) -> str:
    """Give team user `user` its limits (idempotent); the mechanism used."""
    limits = settings.limits
    how = mechanism(ex, settings.cgroup_root)
    if limits.enabled:
        ex.run(["mkdir", "-p", "-m", "755", "--", LIMITS_D])
        _write(ex, f"{LIMITS_D}/workshop-{user}.conf", pam_text(user, limits))
    if not limits.enabled or how == NONE:
        log.info("team limits user=%s mechanism=%s enabled=%s", user, how, limits.enabled)
        return how
    if how == SYSTEMD:
        folder = _slice_dir(_uid(ex, user))
        ex.run(["mkdir", "-p", "-m", "755", "--", folder])
        _write(ex, f"{folder}/50-workshop.conf", slice_text(limits))
        ex.run(["systemctl", "daemon-reload"])
    else:
        mem = str(limits.memory_max_mb * 1024 * 1024)
        args = [settings.cgroup_root, user, str(cpu_shares(limits)), mem, str(limits.tasks_max)]
        ex.run(["sh", "-c", _V1_APPLY, "sh", *args])
        _write(ex, join_path(settings, user), join_text(user, settings.cgroup_root))
    log.info(
        "team limits user=%s mechanism=%s cpu_weight=%d memory_max_mb=%d tasks_max=%d",
        user,
        how,
        limits.cpu_weight,
        limits.memory_max_mb,
        limits.tasks_max,
    )
    return how


def remove_team(ex: Executor, settings: Settings, user: str, uid: str | None) -> None:
    """Remove everything `apply_team` made for `user` (what is there); `uid` if still known."""
    ex.run(["rm", "-f", "--", f"{LIMITS_D}/workshop-{user}.conf", join_path(settings, user)])
    if uid:
        folder = _slice_dir(uid)
        _, out, _ = ex.run(["sh", "-c", 'test -d "$1" && echo yes', "sh", folder], check=False)
        if out.strip():
            ex.run(["rm", "-rf", "--", folder])
            ex.run(["systemctl", "daemon-reload"], check=False)
    ex.run(["sh", "-c", _V1_REMOVE, "sh", settings.cgroup_root, user])
    log.info("team limits removed user=%s", user)


def uid_of(ex: Executor, user: str) -> str | None:
    """The user's uid, or None when there is no such user."""
    rc, out, _ = ex.run(["id", "-u", "--", user], root=False, check=False)
    return out.strip() if rc == 0 else None


DESCRIPTIONS = {
    SYSTEMD: "systemd user slices (CPUWeight, MemoryMax, TasksMax per team)",
    CGROUP_V1: "a cgroup per team (cpu.shares, memory limit, pids.max), joined at login",
    NONE: "no cgroups here: only the process limit (pam_limits nproc) applies",
}


def in_place(ex: Executor, settings: Settings, user: str, how: str) -> bool:
    """Whether the team's limits are there (what `apply_team` makes with mechanism `how`)."""
    if how == SYSTEMD:
        uid = uid_of(ex, user)
        path = f"{_slice_dir(uid)}/50-workshop.conf" if uid else ""
    elif how == CGROUP_V1:
        path = f"{settings.cgroup_root}/memory/workshop-{user}/memory.limit_in_bytes"
    else:
        path = f"{LIMITS_D}/workshop-{user}.conf"
    return bool(path) and ex.run(["test", "-f", path], root=False, check=False)[0] == 0


def parse(text: str) -> TeamLimits:
    """`--limits`: `off`, or any of `cpu=WEIGHT,memory=MB,tasks=N` (the rest as default)."""
    if text.strip().lower() == "off":
        return TeamLimits(enabled=False)
    names = {"cpu": "cpu_weight", "memory": "memory_max_mb", "tasks": "tasks_max"}
    lows = {"cpu": 1, "memory": 64, "tasks": 16}
    values: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        value = value.strip().upper().removesuffix("M")
        if key not in names or not value.isdigit() or not lows[key] <= int(value) <= 10**7:
            raise ValueError(
                f"{part!r}: expected off, or cpu=WEIGHT (1-10000), memory=MB (64 or more), "
                "tasks=N (16 or more), comma-separated"
            )
        values[names[key]] = int(value)
    if values.get("cpu_weight", 100) > 10000:
        raise ValueError("cpu= is a weight from 1 to 10000 (100 is the default share)")
    d = TeamLimits()
    return TeamLimits(
        cpu_weight=values.get("cpu_weight", d.cpu_weight),
        memory_max_mb=values.get("memory_max_mb", d.memory_max_mb),
        tasks_max=values.get("tasks_max", d.tasks_max),
    )


def text(limits: TeamLimits) -> str:
    """The `--limits` text of `limits` (what `parse` reads back)."""
    if not limits.enabled:
        return "off"
    return f"cpu={limits.cpu_weight},memory={limits.memory_max_mb},tasks={limits.tasks_max}"
