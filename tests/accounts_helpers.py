"""Shared set-up of the accounts tests: a real sshd, fresh settings, cleaning up every trace.

A real OpenSSH server runs on 127.0.0.1 (a free port, a test host key pinned in a temporary
known_hosts). Test teams get a test-only prefix; a finalizer removes every user, home, login
profile, role and schema with that prefix, also when a test fails.
"""

import contextlib
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import paramiko
import psycopg
import pytest
from sshd_server import keygen
from sshd_server import sshd as sshd_server

from game_server.accounts import config
from game_server.storage import database, teams

ADMIN = "postgresql://postgres@127.0.0.1:5432/"
PSQL_ADMIN = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres"]
ROSTER = "name,members,ssh_key\nRed Team,Ann; Bob,\nBlue,Cy,{key}\n"
TEST_USER = re.compile(r"gst[0-9a-f]{4}-")  # the prefix `setup` gives each test's teams


def passwd_lines(own_prefix: str | None = None) -> list[str]:
    """/etc/passwd without the teams of other accounts tests, which run beside this one in
    other xdist workers (each under its own prefix); the lines of `own_prefix` stay in."""
    return [
        line
        for line in Path("/etc/passwd").read_text().splitlines()
        if not TEST_USER.match(line) or (own_prefix and line.startswith(own_prefix))
    ]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1: (port, known_hosts, root client key, team public key)."""
    if not os.path.exists("/usr/sbin/sshd") or os.geteuid() != 0:
        pytest.skip("needs root and /usr/sbin/sshd")  # the markers fail this in CI
    d = tmp_path_factory.mktemp("sshd")
    client, team = keygen(d / "client"), keygen(d / "team")
    (d / "root_keys").write_text(client.with_suffix(".pub").read_text())
    with sshd_server(d, f"Match User root\n  AuthorizedKeysFile {d / 'root_keys'}\n") as server:
        team_key = team.with_suffix(".pub").read_text().strip()
        yield server.port, server.known_hosts, str(client), team_key


def token_owner(settings: config.Settings, token: str) -> str | None:
    """The game team `token` belongs to, or None (read from the game's database)."""
    engine = database.make_engine(settings.game_cmd[settings.game_cmd.index("--db") + 1])
    try:
        with engine.connect() as conn:
            row = teams.authenticate(conn, token)
    finally:
        engine.dispose()
    return row and row["name"]


def cleanup(prefix: str, settings: config.Settings) -> None:
    """Remove every user, home, login profile, role and schema with `prefix`, the databases."""
    for line in Path("/etc/passwd").read_text().splitlines():
        user = line.split(":")[0]
        if user.startswith(prefix):
            subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True)
            subprocess.run(["userdel", "-r", user], capture_output=True)
    for snippet in Path(settings.profile_dir).glob(f"workshop-{prefix}*.sh"):
        snippet.unlink()
    for pam in Path("/etc/security/limits.d").glob(f"workshop-{prefix}*.conf"):
        pam.unlink()
    for group in Path("/sys/fs/cgroup").glob(f"*/workshop-{prefix}*"):
        with contextlib.suppress(OSError):  # its processes were killed with the users
            group.rmdir()
    with psycopg.connect(ADMIN + "postgres", autocommit=True) as conn:
        for db in (settings.workshop_db, settings.game_db):
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        for (role,) in conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (prefix + "%",)
        ).fetchall():
            conn.execute(f'DROP ROLE "{role}"')
        conn.execute(f'DROP ROLE IF EXISTS "{settings.game_role}"')


@pytest.fixture
def setup(tmp_path, sshd):
    """Settings for a provisioning run with a fresh prefix, databases, game and registry."""
    port, known_hosts, _, team_key = sshd
    tag = uuid.uuid4().hex[:6]
    prefix = f"gst{tag[:4]}-"
    game_url = f"sqlite:///{tmp_path / 'game.sqlite'}"
    game_cmd = [sys.executable, "-m", "game_server", "--db", game_url]
    subprocess.run([*game_cmd, "init"], check=True, capture_output=True)
    settings = config.Settings(
        prefix=prefix,
        registry=str(tmp_path / "state" / "accounts.json"),
        handout_dir=str(tmp_path / "handout"),
        api_ports=(19000, 19099),
        jupyter_ports=(19500, 19599),
        psql_admin=PSQL_ADMIN,
        workshop_db=f"gs_test_ws_{tag}",
        game_db=f"gs_test_game_{tag}",
        game_role=f"gs_test_gr_{tag}",
        game_cmd=game_cmd,
        ssh_port=port,
        known_hosts=known_hosts,
    )
    with psycopg.connect(ADMIN + "postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{settings.game_db}"')
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER.format(key=team_key))
    try:
        yield settings, str(roster)
    finally:
        cleanup(prefix, settings)


def game_teams(settings) -> dict:
    """The game's teams, name -> active."""
    out = subprocess.run(
        [*settings.game_cmd, "teams", "list", "--json"], capture_output=True, text=True, check=True
    ).stdout
    return {t["name"]: t["active"] for t in json.loads(out)}


def ssh_as(port, known_hosts, user, password, command="id -un") -> str:
    """Log in as `user` with its password and run `command`; its output."""
    client = paramiko.SSHClient()
    client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        "127.0.0.1",
        port,
        user,
        password=password,
        allow_agent=False,
        look_for_keys=False,
        timeout=10,
    )
    try:
        return client.exec_command(command, timeout=20)[1].read().decode().strip()
    finally:
        client.close()


def as_user(user: str, script: str, *args: str) -> subprocess.CompletedProcess:
    """Run a shell script as `user` (what a team can do in its own home)."""
    return subprocess.run(
        ["runuser", "-u", user, "--", "sh", "-c", script, "sh", *args],
        capture_output=True,
        text=True,
        cwd="/",
    )
