"""`users check`: log in as each team for real and show that the isolation holds.

Per team: finished (no journal of an interrupted run in its record), no admin group, a
home only it can enter, its login-shell snippet, a database role with no risky flag that
can use its own schema and nothing else (pgsql's probes, run as the team's role with the
password from the handout), no access to the game's database, and an SSH login with the
handout's password that lands as that user.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from game_server.accounts import handout, pgsql
from game_server.accounts.config import Settings
from game_server.accounts.executors import ExecError, Executor, ssh_client
from game_server.accounts.registry import Record, interrupted_at, read_registry
from game_server.accounts.state import home_of, profile_path, psql_lines, system_users

SUDO_GROUPS = {"sudo", "admin", "wheel", "root", "adm"}
NOT_CHECKED = "ssh login not checked"


def check(
    ex: Executor,
    settings: Settings,
    names: list[str] | None = None,
    echo: Callable[[str], Any] = print,
) -> bool:
    """Check every (or the named) provisioned team for real; True when all hold."""
    registry = read_registry(ex, settings)
    kept = handout.load(settings.handout_dir)
    chosen = [registry[n] for n in sorted(registry) if names is None or n in names]
    flags = role_flags(ex, settings, [t.role for t in chosen])
    ok, users = True, system_users(ex)
    for i, rec in enumerate(chosen):
        other = chosen[(i + 1) % len(chosen)] if len(chosen) > 1 else None
        home = home_of(users, rec.user)
        problems = check_team(ex, settings, rec, other, kept.get(rec.name, {}), home)
        if rec.role not in flags:
            problems.append(f"no database role {rec.role}")
        elif flags[rec.role]:
            problems.append(f"role {rec.role} has {flags[rec.role]}")
        ok = ok and not [p for p in problems if not p.startswith(NOT_CHECKED)]
        echo(
            f"{rec.user} ({rec.name}): "
            + ("ok: ssh login, own schema, isolation" if not problems else "; ".join(problems))
        )
    return ok


def role_flags(ex: Executor, settings: Settings, roles: list[str]) -> dict[str, str]:
    """Each existing role of `roles` -> its risky flags, comma-separated ("" for none)."""
    if not roles:
        return {}
    rows = psql_lines(ex, settings, "postgres", pgsql.role_flags_sql(roles))
    return dict(line.split("|", 1) for line in rows)


def _with_password(settings: Settings, role: str, db: str) -> list[str]:
    """argv that reads PGPASSWORD from stdin's first line, then runs psql (rest of stdin = SQL)."""
    script = 'IFS= read -r PGPASSWORD; export PGPASSWORD; exec "$@"'
    return ["sh", "-c", script, "sh", *settings.team_psql(role, db)]


def check_team(
    ex: Executor,
    settings: Settings,
    rec: Record,
    other: Record | None,
    kept: dict[str, Any],
    home: str,
) -> list[str]:
    """Check one team for real; the problems found ([] when everything holds)."""
    user, problems = rec.user, []
    step = interrupted_at(rec)
    if step:
        problems.append(
            f"unfinished: interrupted at {step} (run `users create` again, or `users delete`)"
        )
    _, groups, _ = ex.run(["id", "-Gn", "--", user], root=False)
    if SUDO_GROUPS & set(groups.split()):
        problems.append(f"in an admin group: {groups.strip()}")
    rc, mode, _ = ex.run(["stat", "-c", "%a", "--", home], check=False)
    if rc != 0:
        problems.append(f"no home {home}")
    elif mode.strip() != "700":
        problems.append(f"home mode {mode.strip()}, not 700")
    if ex.run(["test", "-f", profile_path(settings, user)], check=False)[0] != 0:
        problems.append(f"no login profile {profile_path(settings, user)}")
    problems += database_problems(ex, settings, rec, other, kept.get("db_password"))
    password = kept.get("password")
    if password and password != handout.NOT_STORED:
        problems += ssh_login_problems(settings, user, password)
    else:
        problems.append(f"{NOT_CHECKED}: password not stored in the handout")
    return problems


def database_problems(
    ex: Executor, settings: Settings, rec: Record, other: Record | None, db_password: str | None
) -> list[str]:
    """Log in as the team's role: its own schema only, and no way into the game's database."""
    problems = []
    pw = (db_password or "") + "\n"
    rc, _, err = ex.run(
        _with_password(settings, rec.role, settings.workshop_db),
        stdin=pw + pgsql.isolation_sql(rec.schema, other.schema if other else None),
        check=False,
        root=False,
    )
    found = pgsql.parse_probes(err)
    if rc != 0:
        problems.append(f"database login as {rec.role} failed: {err.strip().splitlines()[-1:]}")
    for probe, want in pgsql.EXPECTED.items():
        if probe in found and found[probe] != want:
            problems.append(f"database: {probe} is {found[probe]}, expected {want}")
    rc, _, err = ex.run(
        _with_password(settings, rec.role, settings.game_db),
        stdin=pw + "SELECT 1;\n",
        check=False,
        root=False,
    )
    if rc == 0:
        problems.append(f"team role can connect to the game database {settings.game_db}")
    elif "permission denied" not in err and "does not exist" not in err:
        problems.append(f"game database: unexpected error: {err.strip()[:200]}")
    return problems


def ssh_login_problems(settings: Settings, user: str, password: str) -> list[str]:
    """Log in over SSH with the password and run `id -un`; the problems ([] when it works)."""
    try:
        client = ssh_client(
            settings.ssh_host,
            settings.ssh_port,
            user,
            settings.known_hosts or str(Path("~/.ssh/known_hosts").expanduser()),
            password=password,
        )
    except ExecError as exc:
        return [f"ssh login failed: {exc}"]
    try:
        _, stdout, _ = client.exec_command("id -un", timeout=15)
        who = stdout.read().decode().strip()
    except Exception as exc:  # any failure of the session is the finding
        return [f"ssh command failed: {exc}"]
    finally:
        client.close()
    return [] if who == user else [f"ssh login ran as {who!r}, not {user!r}"]
