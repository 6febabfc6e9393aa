"""`users delete`: remove provisioned teams (processes, home, user, login profile, role,
schema, ports, game).

Only teams in the provisioning registry are removed (by team or user name), so a typo can
never delete a system user. Every part is removed only if it is there, so a team that a
`users create` left unfinished (its record holds a journal) is removed like any other, and
a `delete` that was interrupted is finished by running it again. Each team is taken out of
the registry and the handout as soon as it is gone; in the game it is disabled, so its
results stay on the board. A home is archived as the team user (root reads nothing in it),
with the clean environment of files.as_team.
"""

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from game_server.accounts import handout, limits, pgsql
from game_server.accounts.config import AccountsError, Settings
from game_server.accounts.executors import Executor
from game_server.accounts.files import as_team
from game_server.accounts.game_cli import disable_in_game
from game_server.accounts.progress import Progress
from game_server.accounts.registry import Record, read_registry, write_registry
from game_server.accounts.state import has_workshop_db, profile_path, system_users

log = logging.getLogger(__name__)


def delete(
    ex: Executor,
    settings: Settings,
    names: list[str] | None,
    archive_dir: str | None = None,
    echo: Callable[[str], Any] = print,
) -> None:
    """Remove teams (all with names=None): processes, home, user, role, schema, ports, game."""
    registry = read_registry(ex, settings)
    chosen = sorted(registry) if names is None else team_names(registry, names)
    kept = handout.load(settings.handout_dir)
    users = system_users(ex)
    if archive_dir:
        ex.run(["mkdir", "-p", "-m", "700", "--", archive_dir])
    progress = Progress(len(chosen), echo)
    for name in chosen:
        rec = registry[name]
        user = rec.user
        progress.next(f"{user} ({name}): deleting")
        uid = limits.uid_of(ex, user) if user in users else None
        if user in users:
            remove_user(ex, user, users[user], archive_dir, echo)
        limits.remove_team(ex, settings, user, uid)
        ex.run(["rm", "-f", "--", profile_path(settings, user)])
        drop_database(ex, settings, rec)
        if settings.game_cmd:
            disable_in_game(ex, settings, name)
        del registry[name]
        write_registry(ex, settings, registry)
        kept.pop(name, None)
        handout.save(settings.handout_dir, kept)
        log.info("team deleted team=%s user=%s", name, user)
        ports = "/".join(str(port) for port in rec.ports() if port)
        echo(
            f"{user} ({name}): deleted (user, home, login profile, limits, role, schema, "
            f"ports {ports}, game)"
        )


def team_names(registry: dict[str, Record], names: list[str]) -> list[str]:
    """The registry's team names for `names` (team or user names); refuses any unknown."""
    by_user = {t.user: n for n, t in registry.items()}
    unknown = [n for n in names if n not in registry and n not in by_user]
    if unknown:
        raise AccountsError(
            f"not in the provisioning registry (never deleted): {', '.join(unknown)}"
        )
    return [by_user.get(n, n) for n in names]


def remove_user(
    ex: Executor, user: str, home: str, archive_dir: str | None, echo: Callable[[str], Any]
) -> None:
    """Stop the user's processes, archive its home if asked, delete the user and home."""
    ex.run(["pkill", "-KILL", "-u", user], check=False)
    if archive_dir:
        out = f"{archive_dir}/{user}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.tar.gz"
        tar = as_team(
            user, home, ["tar", "-czf", "-", "-C", str(Path(home).parent), "--", Path(home).name]
        )
        script = 'umask 077; out=$1; shift; "$@" > "$out"; rc=$?; [ "$rc" -le 1 ] || exit "$rc"'
        ex.run(["sh", "-c", script, "sh", out, *tar])  # tar's 1: a file changed while read
        ex.run(["pkill", "-KILL", "-u", user], check=False)
        echo(f"{user}: home archived to {out}")
    err = ""
    for _ in range(3):  # a process may still be exiting after the kill
        rc, _, err = ex.run(["userdel", "-r", "--", user], check=False)
        if rc in (0, 12):  # 12: the home was already gone
            return
        ex.run(["pkill", "-KILL", "-u", user], check=False)
        ex.run(["sleep", "0.5"], root=False)
    raise AccountsError(f"userdel {user} failed: {err.strip()}")


def drop_database(ex: Executor, settings: Settings, rec: Record) -> None:
    """Drop the team's schema and role (the schema only inside the workshop database)."""
    db = settings.workshop_db if has_workshop_db(ex, settings) else "postgres"
    ex.run(settings.psql(db), stdin=pgsql.drop_team_sql(rec.role, rec.schema), root=False)
