"""Provisioning the teams' accounts: the plan, its steps, delete and check.

`create` reads the actual state through an executor (the provisioning registry, the Linux
users, the files in the teams' homes, the PostgreSQL roles and schemas, the game's teams,
the ports in use), compares it with the state the roster asks for, and applies only the
differences. That makes it idempotent (a second run prints "unchanged" for every team) and
gives `--dry-run` for free (print the plan, apply nothing). Teams in the registry but not
in the roster are left alone; `delete` removes them.

State on the server: the registry (default /var/lib/game-server/accounts.json, mode 0600,
written atomically) records per team the Linux user, ports, role, schema and creation time.
Secrets (the Linux and database passwords, the game token) are kept only in the
instructor's handout (handout.py) and in the team's `participant_starter/.env` (0600).
Writes inside a team's home run as the team user (`runuser`), so a symlink a team plants
cannot redirect a root write.
"""

import datetime as dt
import io
import json
import logging
import secrets
import shlex
import string
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from game_server.accounts import handout, pgsql, roster
from game_server.accounts.executors import ExecError, ssh_client

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
INIT_SQL = REPO / "database_docker" / "initdb" / "01-workshop.sql"
STARTER_DIR_NAME = "participant_starter"
SUDO_GROUPS = {"sudo", "admin", "wheel", "root", "adm"}
PASSWORD_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")
SKIP_NAMES = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".ruff_cache", ".venv", ".env"}
SKIP_SUFFIXES = (".pyc", ".sqlite", ".sqlite3", ".db", ".pkl", ".joblib")


@dataclass
class Settings:
    """Everything `users create/delete/list/check` needs besides the executor and roster."""

    prefix: str = roster.DEFAULT_PREFIX
    registry: str = "/var/lib/game-server/accounts.json"
    handout_dir: str = "handout"
    api_ports: tuple[int, int] = (9000, 9499)
    jupyter_ports: tuple[int, int] = (9500, 9999)
    psql_admin: list[str] = field(
        default_factory=lambda: shlex.split("sudo -n -u postgres psql -X -v ON_ERROR_STOP=1")
    )
    db_host: str = "127.0.0.1"
    db_port: int = 5432
    workshop_db: str = "workshop"
    game_db: str = "game"
    game_role: str = "game_server"
    game_url: str = "http://127.0.0.1:8000"
    game_cmd: list[str] | None = field(default_factory=lambda: ["game-server"])
    game_db_url: str | None = None  # passed on stdin (it may hold a password), not in argv
    starter_dir: str = str(REPO / STARTER_DIR_NAME)
    train_data: str = str(REPO / "data" / "train_data.csv")
    ssh_host: str = "127.0.0.1"  # where teams log in (for the handout and the check)
    ssh_port: int = 22
    known_hosts: str | None = None  # for the check's SSH logins
    rotate: bool = False

    def psql(self, db: str) -> list[str]:
        """The admin psql command for database `db`."""
        return [*self.psql_admin, "-d", db]

    def game(self, *args: str) -> tuple[list[str], str]:
        """argv and stdin of a `game-server` command on the server, with the game's database."""
        if not self.game_db_url:
            return [*self.game_cmd, *args], ""
        script = 'IFS= read -r GAME_DATABASE_URL; export GAME_DATABASE_URL; exec "$@"'
        return ["sh", "-c", script, "sh", *self.game_cmd, *args], self.game_db_url + "\n"

    def team_psql(self, role: str, db: str) -> list[str]:
        """psql as a team role (password from the PGPASSWORD the wrapper reads on stdin)."""
        return [
            "psql",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            self.db_host,
            "-p",
            str(self.db_port),
            "-U",
            role,
            "-d",
            db,
        ]


class AccountsError(RuntimeError):
    """Provisioning that cannot go on; one line (or one per bad roster row)."""


def new_password(length: int = 16) -> str:
    """A Linux login password: letters and digits, no look-alikes (about 93 bits)."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def now() -> str:
    """The current time, ISO 8601 in UTC."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


# ---- reading and writing through the executor ----


def read_file(ex, path: str) -> str | None:
    """The text of `path` on the server, or None when it does not exist."""
    script = 'if [ -e "$1" ]; then exec cat -- "$1"; else exit 3; fi'
    rc, out, err = ex.run(["sh", "-c", script, "sh", path], check=False)
    if rc == 3:
        return None
    if rc != 0:
        raise ExecError(f"cannot read {path}: {err.strip() or f'exit {rc}'}")
    return out


def write_file(ex, path: str, content: str | bytes, mode: str = "600", user: str | None = None):
    """Write `path` atomically (temp + rename), created with `mode`; as `user` if given."""
    script = (
        'set -e; umask 077; t=$(mktemp "$1.XXXXXX"); trap \'rm -f "$t"\' EXIT; '
        'cat > "$t"; chmod "$2" "$t"; mv -f "$t" "$1"; trap - EXIT'
    )
    argv = ["sh", "-c", script, "sh", path, mode]
    ex.run(["runuser", "-u", user, "--", *argv] if user else argv, stdin=content)


def read_registry(ex, settings: Settings) -> dict[str, dict]:
    """The provisioned teams by name, from the registry on the server ({} if none yet)."""
    text = read_file(ex, settings.registry)
    if text is None:
        return {}
    try:
        return {t["name"]: t for t in json.loads(text)["teams"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise AccountsError(f"{settings.registry}: not a provisioning registry: {exc}") from None


def write_registry(ex, settings: Settings, teams: dict[str, dict]) -> None:
    """Write the registry (mode 0600, atomically), creating its folder (0700) if needed."""
    folder = str(Path(settings.registry).parent)
    ex.run(["mkdir", "-p", "-m", "700", folder])
    rows = [teams[n] for n in sorted(teams)]
    write_file(ex, settings.registry, json.dumps({"version": 1, "teams": rows}, indent=2) + "\n")


def system_users(ex) -> dict[str, str]:
    """Every user on the server, name -> home."""
    _, out, _ = ex.run(["getent", "passwd"], root=False)
    users = {}
    for line in out.splitlines():
        parts = line.split(":")
        if len(parts) >= 7:
            users[parts[0]] = parts[5]
    return users


def ports_in_use(ex) -> set[int]:
    """The TCP ports something listens on, from `ss -ltnH`."""
    _, out, _ = ex.run(["ss", "-ltnH"], root=False)
    ports = set()
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 4 and cols[3].rpartition(":")[2].isdigit():
            ports.add(int(cols[3].rpartition(":")[2]))
    return ports


def existing_paths(ex, paths: list[str]) -> set[str]:
    """Which of `paths` exist on the server (one command for all)."""
    if not paths:
        return set()
    script = 'for f; do if [ -e "$f" ]; then printf "%s\\n" "$f"; fi; done'
    _, out, _ = ex.run(["sh", "-c", script, "sh", *paths])
    return set(out.splitlines())


def psql_lines(ex, settings: Settings, db: str, sql: str) -> list[str]:
    """Run `sql` as the database admin in `db`; the output rows (unaligned, tuples only)."""
    _, out, _ = ex.run([*settings.psql(db), "-A", "-t", "-q"], stdin=sql, root=False)
    return [line for line in out.splitlines() if line]


def db_state(ex, settings: Settings) -> dict:
    """Roles and schemas with the prefix, and whether the shared set-up is there."""
    rows = psql_lines(
        ex,
        settings,
        "postgres",
        pgsql.state_sql(settings.prefix) + pgsql.database_sql(settings.workshop_db),
    )
    state = {"role": set(), "schema": set(), "base": set(), "db": set()}
    for row in rows:
        kind, _, name = row.partition("|")
        state[kind].add(name)
    if state["db"]:
        for row in psql_lines(ex, settings, settings.workshop_db, pgsql.state_sql(settings.prefix)):
            kind, _, name = row.partition("|")
            if kind == "schema":
                state["schema"].add(name)
    return state


def apply_init_sql(ex, settings: Settings) -> None:
    """Apply the shared init SQL (databases, game role, base role, hardening; idempotent)."""
    argv = [
        *settings.psql("postgres"),
        "-q",
        "-v",
        f"workshop_db={settings.workshop_db}",
        "-v",
        f"game_db={settings.game_db}",
        "-v",
        f"game_role={settings.game_role}",
    ]
    if not INIT_SQL.is_file():
        raise AccountsError(
            f"no init SQL at {INIT_SQL}: run `users` from a checkout (make install)"
        )
    ex.run(argv, stdin=INIT_SQL.read_text(), root=False)
    log.info("applied shared init sql workshop_db=%s", settings.workshop_db)


def game_teams(ex, settings: Settings) -> dict[str, bool]:
    """The teams registered in the game, name -> active ({} without a game command)."""
    if not settings.game_cmd:
        return {}
    argv, stdin = settings.game("teams", "list", "--json")
    _, out, _ = ex.run(argv, stdin=stdin)
    try:
        return {t["name"]: bool(t["active"]) for t in json.loads(out)}
    except (ValueError, KeyError, TypeError) as exc:
        raise AccountsError(f"`teams list --json` gave no team list: {exc}") from None


def game_token(ex, settings: Settings, *args: str) -> str:
    """Run `game-server teams <args> --json` (add, token) on the server; the token it prints."""
    argv, stdin = settings.game("teams", *args, "--json")
    _, out, _ = ex.run(argv, stdin=stdin)
    try:
        token = json.loads(out)["token"]
    except (ValueError, KeyError, TypeError):
        token = None
    if not isinstance(token, str) or not token:
        raise AccountsError(f"`teams {args[0]} {args[1]}` printed no token: {out.strip()[:200]}")
    return token


def register_in_game(ex, settings: Settings, name: str, api_port: int) -> str:
    """Register team `name` in the game with its predict URL; its token."""
    return game_token(ex, settings, "add", name, "--url", f"http://127.0.0.1:{api_port}/predict")


# ---- the plan ----


@dataclass
class TeamPlan:
    """What `create` will do for one team: the steps, in order, and the team's record."""

    team: roster.Team
    record: dict  # the registry record (ports etc.)
    secrets: dict  # password, db_password, token (known or generated)
    steps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # shown, but nothing to change


def allocate(wanted: str, taken: set[int], span: tuple[int, int]) -> int:
    """The lowest free port of `span` not in `taken`."""
    for port in range(span[0], span[1] + 1):
        if port not in taken:
            return port
    raise AccountsError(f"no free {wanted} port left in {span[0]}-{span[1]}")


def home_of(users: dict[str, str], user: str) -> str:
    """The home folder of `user` (the default /home/USER for a user still to be created)."""
    return users.get(user) or f"/home/{user}"


def make_plan(ex, settings: Settings, roster_path: str) -> tuple[list[TeamPlan], dict]:
    """Read the actual state, validate the roster against it, and plan every team's steps."""
    registry = read_registry(ex, settings)
    users = system_users(ex)
    ours = {t["user"] for t in registry.values()}
    try:
        teams = roster.load_roster(
            roster_path, prefix=settings.prefix, existing_users=set(users), ours=ours
        )
    except roster.RosterError as exc:
        raise AccountsError(str(exc)) from None
    for team in teams:
        known = registry.get(team.name)
        if known and known["user"] != team.user:
            raise AccountsError(
                f"{roster_path}:{team.line}: team {team.name!r} is provisioned "
                f"as {known['user']!r}, not {team.user!r} (another prefix?)"
            )
    kept = handout.load(settings.handout_dir)
    db = db_state(ex, settings)
    in_game = game_teams(ex, settings)
    taken = ports_in_use(ex) | {
        p for t in registry.values() for p in (t["api_port"], t["jupyter_port"])
    }
    probe = []
    for team in teams:
        home = home_of(users, team.user)
        probe += [f"{home}/{STARTER_DIR_NAME}", f"{home}/{STARTER_DIR_NAME}/.env"]
    present = existing_paths(ex, probe)
    plans = []
    for team in teams:
        record = dict(registry.get(team.name) or {})
        old = kept.get(team.name, {})
        secret = {k: old.get(k) for k in ("password", "db_password", "token")}
        plan = TeamPlan(team, record, secret)
        home = home_of(users, team.user)
        if not record:
            api = allocate("API", taken, settings.api_ports)
            taken.add(api)
            jup = allocate("Jupyter", taken, settings.jupyter_ports)
            taken.add(jup)
            record.update(
                name=team.name,
                user=team.user,
                api_port=api,
                jupyter_port=jup,
                role=team.user,
                schema=team.user,
                created=now(),
            )
            plan.steps.append(f"assign ports {api}/{jup}")
        if team.user not in users:
            plan.steps.append("create user")
        if team.user not in users or settings.rotate:
            secret["password"] = new_password()
            plan.steps.append("set password")
        if team.ssh_key and (
            team.user not in users
            or team.ssh_key
            not in (read_file(ex, f"{home}/.ssh/authorized_keys") or "").splitlines()
        ):
            plan.steps.append("write ssh key")
        if team.user not in db["role"]:
            plan.steps.append("create role and schema")
            secret["db_password"] = secrets.token_urlsafe(18)
        elif team.user not in db["schema"]:
            plan.steps.append("create schema")
        if team.user in db["role"] and settings.rotate:
            secret["db_password"] = secrets.token_urlsafe(18)
            plan.steps.append("set database password")
        if settings.game_cmd:
            plan_game_steps(plan, settings, in_game, new=not registry.get(team.name),
                            env_present=f"{home}/{STARTER_DIR_NAME}/.env" in present)  # fmt: skip
        if f"{home}/{STARTER_DIR_NAME}" not in present:
            plan.steps.append("copy starter")
        if f"{home}/{STARTER_DIR_NAME}/.env" not in present or plan.steps:
            plan.steps.append("write .env")
        plans.append(plan)
    context = {"registry": registry, "users": users, "db": db, "kept": kept, "in_game": in_game}
    return plans, context


def plan_game_steps(
    plan: TeamPlan, settings: Settings, in_game: dict, new: bool, env_present: bool
) -> None:
    """The game's steps of one team: register; or enable and/or issue a new token."""
    name = plan.team.name
    if name not in in_game:
        plan.steps.append("register in game")
        return
    if not in_game[name] and new:  # deleted by `users delete`, now created again
        plan.steps.append("enable in game")
    elif not in_game[name]:  # disabled by hand (`teams disable`): the instructor's choice
        plan.notes.append("disabled in the game")
    token_lost = not plan.secrets.get("token") and not env_present
    if new or settings.rotate or token_lost:
        plan.steps.append("new game token")


def describe(plan: TeamPlan) -> str:
    """One line: the team and what will change (or "unchanged")."""
    what = ", ".join(plan.steps) if plan.steps else "unchanged"
    if plan.notes:
        what += f" (note: {', '.join(plan.notes)})"
    return f"{plan.team.user} ({plan.team.name}): {what}"


# ---- applying one team's steps ----


def starter_tarball(settings: Settings) -> bytes:
    """The participant starter as a tar.gz (no caches, models, .env, databases) + train data."""
    base = Path(settings.starter_dir)
    if not base.is_dir():
        raise AccountsError(f"no participant starter at {base}")

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = Path(info.name).parts
        name = parts[-1]
        if set(parts) & SKIP_NAMES or name.endswith(SKIP_SUFFIXES):
            return None
        if len(parts) >= 3 and parts[1] == "models" and name != "README.md":
            return None  # trained models are the team's to make
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(base, arcname=STARTER_DIR_NAME, filter=keep)
        data = Path(settings.train_data)
        if data.is_file():
            tar.add(data, arcname=f"{STARTER_DIR_NAME}/data/train_data.csv", filter=keep)
    return buf.getvalue()


def database_url(settings: Settings, role: str, password: str | None) -> str:
    """The team's DATABASE_URL (SQLAlchemy + psycopg)."""
    url = URL.create(
        "postgresql+psycopg",
        username=role,
        password=password or "PASSWORD",
        host=settings.db_host,
        port=settings.db_port,
        database=settings.workshop_db,
    )
    return url.render_as_string(hide_password=False)


def url_password(url: str) -> str | None:
    """The password in a database URL (None when it has none or is not a URL)."""
    try:
        return make_url(url).password or None
    except ArgumentError:
        return None


def env_text(settings: Settings, plan: TeamPlan) -> str:
    """The team's .env."""
    r, s = plan.record, plan.secrets
    return (
        "# Written by `game-server users create`: your team's settings. Keep it private.\n"
        f"PORT={r['api_port']}\nJUPYTER_PORT={r['jupyter_port']}\n"
        f"DATABASE_URL={database_url(settings, r['role'], s.get('db_password'))}\n"
        f"GAME_URL={settings.game_url}\nTEAM_TOKEN={s.get('token') or ''}\n"
    )


def read_env(ex, path: str) -> dict[str, str]:
    """KEY=VALUE pairs of an existing .env on the server ({} if none)."""
    text = read_file(ex, path) or ""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.startswith("#")}


def apply_plan(ex, settings: Settings, plan: TeamPlan, context: dict) -> None:
    """Carry out one team's steps, in order (only the differences)."""
    team, rec, s, steps = plan.team, plan.record, plan.secrets, set(plan.steps)
    user = team.user
    if "create user" in steps:
        ex.run(
            [
                "useradd",
                "--create-home",
                "--user-group",
                "--shell",
                "/bin/bash",
                "--comment",
                f"workshop team {team.name}",
                "--",
                user,
            ]
        )
        context["users"] = system_users(ex)
    home = home_of(context["users"], user)
    if "create user" in steps:
        ex.run(["chmod", "0700", home])
    if "set password" in steps:
        ex.run(["chpasswd"], stdin=f"{user}:{s['password']}\n")
    if "write ssh key" in steps:
        ex.run(["runuser", "-u", user, "--", "mkdir", "-p", "-m", "700", f"{home}/.ssh"])
        write_file(ex, f"{home}/.ssh/authorized_keys", team.ssh_key + "\n", "600", user)
    needs_db = "create role and schema" in steps or "create schema" in steps
    if needs_db and (not context["db"]["base"] or settings.workshop_db not in context["db"]["db"]):
        apply_init_sql(ex, settings)
        context["db"] = db_state(ex, settings)
    if "create role and schema" in steps:
        verifier = pgsql.scram_verifier(s["db_password"])
        ex.run(
            settings.psql(settings.workshop_db),
            stdin=pgsql.create_team_sql(user, user, verifier),
            root=False,
        )
    elif "create schema" in steps:
        sql = pgsql.create_schema_sql(user, user)
        ex.run(settings.psql(settings.workshop_db), stdin=sql, root=False)
    if "set database password" in steps:
        sql = pgsql.set_password_sql(user, pgsql.scram_verifier(s["db_password"]))
        ex.run(settings.psql(settings.workshop_db), stdin=sql, root=False)
    if "register in game" in steps:
        s["token"] = register_in_game(ex, settings, team.name, rec["api_port"])
    if "enable in game" in steps:
        argv, stdin = settings.game("teams", "enable", team.name)
        ex.run(argv, stdin=stdin)
    if "new game token" in steps:
        s["token"] = game_token(ex, settings, "token", team.name)
    if "copy starter" in steps:
        ex.run(
            [
                "runuser",
                "-u",
                user,
                "--",
                "tar",
                "-xzf",
                "-",
                "-C",
                home,
                "--no-same-owner",
                "--no-same-permissions",
            ],
            stdin=starter_tarball(settings),
        )
    if "write .env" in steps:
        env_path = f"{home}/{STARTER_DIR_NAME}/.env"
        old = read_env(ex, env_path)
        if not s.get("db_password") and "DATABASE_URL" in old:  # keep what still holds
            s["db_password"] = url_password(old["DATABASE_URL"])
        if not s.get("token"):
            s["token"] = old.get("TEAM_TOKEN") or None
        write_file(ex, env_path, env_text(settings, plan), "600", user)
    log.info("team provisioned team=%s user=%s steps=%s", team.name, user, ",".join(plan.steps))


def handout_entry(settings: Settings, plan: TeamPlan) -> dict:
    """The team's handout record: login, password, ports, database URL, token."""
    r, s = plan.record, plan.secrets
    port = "" if settings.ssh_port == 22 else f" -p {settings.ssh_port}"
    return {
        "name": plan.team.name,
        "members": plan.team.members,
        "user": plan.team.user,
        "ssh": f"ssh {plan.team.user}@{settings.ssh_host}{port}",
        "password": s.get("password") or handout.NOT_STORED,
        "db_password": s.get("db_password"),
        "api_port": r["api_port"],
        "jupyter_port": r["jupyter_port"],
        "database_url": database_url(settings, r["role"], s.get("db_password"))
        if s.get("db_password")
        else handout.NOT_STORED,
        "game_url": settings.game_url,
        "token": s.get("token") or handout.NOT_STORED,
    }


def create(
    ex, settings: Settings, roster_path: str, dry_run: bool = False, echo=print
) -> list[TeamPlan]:
    """Provision every team of the roster (only what differs); print one line per team."""
    plans, context = make_plan(ex, settings, roster_path)
    for plan in plans:
        echo(("would: " if dry_run and plan.steps else "") + describe(plan))
    if dry_run:
        return plans
    registry, kept = context["registry"], context["kept"]
    try:
        for plan in plans:
            if plan.steps:
                apply_plan(ex, settings, plan, context)
            registry[plan.team.name] = plan.record
            if plan.steps:
                write_registry(ex, settings, registry)
            entry = handout_entry(settings, plan)
            old = kept.get(plan.team.name, {})
            kept[plan.team.name] = {
                **entry,
                **{
                    k: old[k]
                    for k in ("password", "db_password", "database_url", "token")
                    if entry.get(k) in (handout.NOT_STORED, None) and old.get(k)
                },
            }
    finally:  # whatever was done is recorded, also when a later team fails
        paths = handout.save(settings.handout_dir, kept)
    echo(f"handout: {paths[0]} and {paths[1]} (mode 0600, keep them private)")
    return plans


# ---- delete, list, check ----


def delete(
    ex, settings: Settings, names: list[str] | None, archive_dir: str | None = None, echo=print
) -> None:
    """Remove teams (all with names=None): processes, home, user, role, schema, ports, game."""
    registry = read_registry(ex, settings)
    if names is None:
        names = sorted(registry)
    unknown = [
        n for n in names if n not in registry and n not in {t["user"] for t in registry.values()}
    ]
    if unknown:
        raise AccountsError(
            f"not in the provisioning registry (never deleted): {', '.join(unknown)}"
        )
    by_user = {t["user"]: n for n, t in registry.items()}
    names = [by_user.get(n, n) for n in names]
    kept = handout.load(settings.handout_dir)
    users = system_users(ex)
    if archive_dir:
        ex.run(["mkdir", "-p", "-m", "700", archive_dir])
    for name in names:
        rec = registry[name]
        user = rec["user"]
        if user in users:
            ex.run(["pkill", "-KILL", "-u", user], check=False)
            if archive_dir:
                home = users[user]
                out = f"{archive_dir}/{user}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.tar.gz"
                script = 'umask 077; exec tar -czf "$1" -C "$2" "$3"'
                ex.run(["sh", "-c", script, "sh", out, str(Path(home).parent), Path(home).name])
                echo(f"{user}: home archived to {out}")
            for _ in range(3):  # a process may still be exiting after the kill
                rc, _, err = ex.run(["userdel", "-r", "--", user], check=False)
                if rc in (0, 12):  # 12: the home was already gone
                    break
                ex.run(["pkill", "-KILL", "-u", user], check=False)
                ex.run(["sleep", "0.5"], root=False)
            else:
                raise AccountsError(f"userdel {user} failed: {err.strip()}")
        ex.run(
            settings.psql(settings.workshop_db)
            if _has_db(ex, settings)
            else settings.psql("postgres"),
            stdin=pgsql.drop_team_sql(rec["role"], rec["schema"]),
            root=False,
        )
        if settings.game_cmd:
            argv, stdin = settings.game("teams", "disable", name)
            rc, _, err = ex.run(argv, stdin=stdin, check=False)
            if rc != 0 and "no team" not in err:
                raise AccountsError(f"teams disable {name} failed: {err.strip()}")
        del registry[name]
        write_registry(ex, settings, registry)
        kept.pop(name, None)
        handout.save(settings.handout_dir, kept)
        log.info("team deleted team=%s user=%s", name, user)
        ports = f"{rec['api_port']}/{rec['jupyter_port']}"
        echo(f"{user} ({name}): deleted (user, home, role, schema, ports {ports}, game)")


def _has_db(ex, settings: Settings) -> bool:
    """Whether the workshop database exists (a schema can only be dropped inside it)."""
    return bool(psql_lines(ex, settings, "postgres", pgsql.database_sql(settings.workshop_db)))


def list_teams(ex, settings: Settings) -> list[dict]:
    """The provisioned teams from the registry, by name."""
    return [t for _, t in sorted(read_registry(ex, settings).items())]


def _with_password(settings: Settings, role: str, db: str) -> list[str]:
    """argv that reads PGPASSWORD from stdin's first line, then runs psql (rest of stdin = SQL)."""
    script = 'IFS= read -r PGPASSWORD; export PGPASSWORD; exec "$@"'
    return ["sh", "-c", script, "sh", *settings.team_psql(role, db)]


def check_team(
    ex, settings: Settings, rec: dict, other: dict | None, kept: dict, home: str
) -> list[str]:
    """Check one team for real; the problems found ([] when everything holds)."""
    user, problems = rec["user"], []
    password, db_password = kept.get("password"), kept.get("db_password")
    _, groups, _ = ex.run(["id", "-Gn", user], root=False)
    if SUDO_GROUPS & set(groups.split()):
        problems.append(f"in an admin group: {groups.strip()}")
    _, mode, _ = ex.run(["stat", "-c", "%a", home])
    if mode.strip() != "700":
        problems.append(f"home mode {mode.strip()}, not 700")
    pw = (db_password or "") + "\n"
    rc, _, err = ex.run(
        _with_password(settings, rec["role"], settings.workshop_db),
        stdin=pw + pgsql.isolation_sql(rec["schema"], other and other["schema"]),
        check=False,
        root=False,
    )
    found = pgsql.parse_probes(err)
    if rc != 0:
        problems.append(f"database login as {rec['role']} failed: {err.strip().splitlines()[-1:]}")
    for probe, want in pgsql.EXPECTED.items():
        if probe in found and found[probe] != want:
            problems.append(f"database: {probe} is {found[probe]}, expected {want}")
    rc, _, err = ex.run(
        _with_password(settings, rec["role"], settings.game_db),
        stdin=pw + "SELECT 1;\n",
        check=False,
        root=False,
    )
    if rc == 0:
        problems.append(f"team role can connect to the game database {settings.game_db}")
    elif "permission denied" not in err and "does not exist" not in err:
        problems.append(f"game database: unexpected error: {err.strip()[:200]}")
    if password and password != handout.NOT_STORED:
        problems += ssh_login_problems(settings, user, password)
    else:
        problems.append("ssh login not checked: password not stored in the handout")
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


def check(ex, settings: Settings, names: list[str] | None = None, echo=print) -> bool:
    """Check every (or the named) provisioned team for real; True when all hold."""
    registry = read_registry(ex, settings)
    kept = handout.load(settings.handout_dir)
    chosen = [registry[n] for n in sorted(registry) if names is None or n in names]
    roles = [t["role"] for t in chosen]
    attrs = {}
    if roles:
        rows = psql_lines(ex, settings, "postgres", pgsql.role_flags_sql(roles))
        attrs = dict(line.split("|") for line in rows)
    ok, users = True, system_users(ex)
    for i, rec in enumerate(chosen):
        other = chosen[(i + 1) % len(chosen)] if len(chosen) > 1 else None
        home = home_of(users, rec["user"])
        problems = check_team(ex, settings, rec, other, kept.get(rec["name"], {}), home)
        if rec["role"] not in attrs:
            problems.append(f"no database role {rec['role']}")
        elif attrs[rec["role"]]:
            problems.append(f"role {rec['role']} has {attrs[rec['role']]}")
        ok = ok and not [p for p in problems if not p.startswith("ssh login not checked")]
        echo(
            f"{rec['user']} ({rec['name']}): "
            + ("ok: ssh login, own schema, isolation" if not problems else "; ".join(problems))
        )
    return ok
