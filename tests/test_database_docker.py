"""database_docker/: the init SQL and role script on a real PostgreSQL, a game on it as the
game's own role, the compose file's settings, and the root Dockerfile (read, not run:
no Docker engine runs on the test machines).
"""

import asyncio
import base64
import os
import re
import shlex
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
import yaml
from conftest import PG_ADMIN_URL
from engine_helpers import fast_game, peeking, play
from team_apis import TeamAPIs

from game_server.accounts import pgsql
from game_server.play import loop as game
from game_server.play import teams
from game_server.storage import control, database, games, standings

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "database_docker"
INIT_SQL = FOLDER / "initdb" / "01-workshop.sql"
ROLE_SCRIPT = FOLDER / "initdb" / "02-game-role.sh"
ADMIN = sa.engine.make_url(PG_ADMIN_URL)
PASSWORD = "test-Pw_" + uuid.uuid4().hex[:16]


def admin_conn(db: str = "postgres") -> psycopg.Connection:
    """An autocommit connection as the admin of the test server."""
    return psycopg.connect(
        host=ADMIN.host, port=ADMIN.port or 5432, user=ADMIN.username, password=ADMIN.password,
        dbname=db, autocommit=True,
    )  # fmt: skip


def pg_env(**extra) -> dict:
    """The environment for psql and the role script: the test server, as its admin."""
    env = {**os.environ, "PGHOST": ADMIN.host, "PGPORT": str(ADMIN.port or 5432)}
    env["POSTGRES_USER"] = ADMIN.username or "postgres"
    if ADMIN.password:
        env["PGPASSWORD"] = ADMIN.password
    return {**env, **extra}


def apply_init_sql(names: dict) -> subprocess.CompletedProcess:
    """Run 01-workshop.sql with psql, the names as psql variables."""
    argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-f", str(INIT_SQL)]
    for key, value in names.items():
        argv += ["-v", f"{key}={value}"]
    return subprocess.run(argv, env=pg_env(), capture_output=True, text=True, timeout=60)


@pytest.fixture
def names():
    """Fresh names for the databases and the game role; all dropped at the end."""
    tag = uuid.uuid4().hex[:8]
    names = {
        "workshop_db": f"gs_test_dd_ws_{tag}",
        "game_db": f"gs_test_dd_game_{tag}",
        "game_role": f"gs_test_dd-role_{tag}",  # a hyphen: every use must quote it
    }
    with admin_conn() as conn:
        had_base = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'workshop_team'").fetchone()
    try:
        yield names
    finally:
        with admin_conn() as conn:
            for db in (names["workshop_db"], names["game_db"]):
                conn.execute(f"DROP DATABASE IF EXISTS {pgsql.quote_ident(db)} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {pgsql.quote_ident(names['game_role'])}")
            if not had_base:  # leave the server as it was
                conn.execute("DROP ROLE IF EXISTS workshop_team")


def cluster_state(names: dict) -> dict:
    """Roles, databases and the ACLs the init SQL touches, as comparable data."""
    with admin_conn() as conn:
        roles = conn.execute(
            "SELECT rolname, rolsuper, rolcanlogin, rolcreatedb, rolcreaterole, rolbypassrls, "
            "rolpassword FROM pg_authid WHERE rolname IN ('workshop_team', %s) ORDER BY 1",
            (names["game_role"],),
        ).fetchall()
        dbs = conn.execute(
            "SELECT datname, datdba::regrole::text, datacl::text FROM pg_database "
            "WHERE datname IN (%s, %s) ORDER BY 1",
            (names["workshop_db"], names["game_db"]),
        ).fetchall()
    schemas = []
    for db in (names["workshop_db"], names["game_db"]):
        with admin_conn(db) as conn:
            schemas += conn.execute(
                "SELECT current_database(), nspname, nspowner::regrole::text, nspacl::text "
                "FROM pg_namespace WHERE nspname = 'public'"
            ).fetchall()
    return {"roles": roles, "databases": dbs, "schemas": schemas}


def scram_matches(verifier: str, password: str) -> bool:
    """Whether a pg_authid SCRAM-SHA-256 verifier was made from `password`."""
    m = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)", verifier)
    assert m, verifier
    stored, server = pgsql.scram_keys(password, base64.b64decode(m[2]), int(m[1]))
    return (base64.b64encode(stored).decode(), base64.b64encode(server).decode()) == (m[3], m[4])


@pytest.mark.postgres
def test_init_sql_is_idempotent_and_sets_up_the_game_role(names):
    first = apply_init_sql(names)
    assert first.returncode == 0, first.stderr
    before = cluster_state(names)
    second = apply_init_sql(names)
    assert second.returncode == 0, second.stderr
    assert cluster_state(names) == before  # the second run changed nothing

    role = {r[0]: r for r in before["roles"]}
    assert role["workshop_team"][1:4] == (False, False, False)  # no superuser, no login
    assert role[names["game_role"]][1:6] == (False, True, False, False, False)
    assert role[names["game_role"]][6] is None  # no password from the SQL file
    owners = {db: owner for db, owner, _ in before["databases"]}
    assert owners[names["game_db"]] == pgsql.quote_ident(names["game_role"])
    acl = {db: acl for db, _, acl in before["databases"]}
    assert "workshop_team=c/" in acl[names["workshop_db"]]
    assert not re.search(r'[{,]"?=', acl[names["game_db"]])  # nothing granted to PUBLIC
    for db, _, owner, schema_acl in before["schemas"]:
        assert not re.search(r'[{,]"?=[A-Za-z]*C', schema_acl), (db, schema_acl)  # no CREATE
        if db == names["game_db"]:
            assert owner == pgsql.quote_ident(names["game_role"])


@pytest.mark.postgres
def test_role_script_sets_the_password_and_refuses_a_weak_one(names):
    assert apply_init_sql(names).returncode == 0
    env = pg_env(GAME_ROLE=names["game_role"])
    weak = subprocess.run(["bash", str(ROLE_SCRIPT)], env={**env, "GAME_DB_PASSWORD": "short"},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert weak.returncode == 1 and weak.stderr.count("\n") == 1 and "16+" in weak.stderr
    missing = subprocess.run(["bash", str(ROLE_SCRIPT)], env=env, capture_output=True, text=True)
    assert missing.returncode == 1 and "GAME_DB_PASSWORD is not set" in missing.stderr
    ok = subprocess.run(["bash", str(ROLE_SCRIPT)], env={**env, "GAME_DB_PASSWORD": PASSWORD},
                        capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    with admin_conn() as conn:
        verifier = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (names["game_role"],)
        ).fetchone()[0]
    assert scram_matches(verifier, PASSWORD) and not scram_matches(verifier, PASSWORD + "x")
    assert PASSWORD not in ok.stdout + ok.stderr


@pytest.mark.postgres
def test_the_game_runs_on_it_as_the_game_role(names):
    assert apply_init_sql(names).returncode == 0
    env = pg_env(GAME_ROLE=names["game_role"], GAME_DB_PASSWORD=PASSWORD)
    subprocess.run(["bash", str(ROLE_SCRIPT)], env=env, check=True, capture_output=True)
    url = ADMIN.set(username=names["game_role"], password=PASSWORD, database=names["game_db"])
    engine = database.make_engine(url.render_as_string(hide_password=False))
    apis = TeamAPIs()
    try:
        assert database.init_db(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar() == names["game_role"]
            assert not conn.execute(sa.text("SELECT rolsuper FROM pg_roles "
                                             "WHERE rolname = current_user")).scalar()  # fmt: skip
        game_file = fast_game()
        database.prepare_game(engine, game_file)
        token = teams.add_team(engine, "good", apis.start(peeking(engine)).url)
        control.apply(engine, "start", "tester")
        asyncio.run(play(game.Game(engine, game_file), engine))
        with engine.connect() as conn:
            assert games.game_row(conn)["state"] == "finished"
            board = standings.leaderboard(conn)["teams"]
            assert teams.authenticate(conn, token)["name"] == "good"
        assert board[0]["name"] == "good" and board[0]["points"] == board[0]["correct"] > 20
    finally:
        apis.close()
        engine.dispose()
    # the game role cannot reach the teams' database
    workshop = url.set(database=names["workshop_db"]).render_as_string(hide_password=False)
    bad = sa.create_engine(workshop)
    with pytest.raises(sa.exc.OperationalError, match="permission denied"):
        bad.connect()
    bad.dispose()


# ---- the compose file and the Dockerfile, read ----


@pytest.fixture(scope="module")
def compose() -> dict:
    """database_docker/docker-compose.yml, parsed."""
    return yaml.safe_load((FOLDER / "docker-compose.yml").read_text())


def test_compose_pins_the_image_and_checks_health(compose):
    db = compose["services"]["db"]
    assert re.fullmatch(r"postgres:1[5-9](\.\d+)?-[a-z]+", db["image"]), db["image"]
    check = db["healthcheck"]["test"]
    assert check[0] in ("CMD", "CMD-SHELL") and "pg_isready" in " ".join(check)
    assert "./initdb:/docker-entrypoint-initdb.d:ro" in db["volumes"]
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]  # a named volume, not a folder of the checkout


def test_compose_binds_ports_to_loopback_only(compose):
    published = [p for s in compose["services"].values() for p in s.get("ports", [])]
    assert published, "the database publishes its port"
    for port in published:
        assert str(port).startswith("127.0.0.1:"), port


def test_compose_holds_no_password(compose):
    text = (FOLDER / "docker-compose.yml").read_text()
    for service in compose["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if "PASSWORD" in key:  # only a reference to the .env file
                assert re.fullmatch(r"\$\{[^}]+\}", str(value)), (key, value)
            for secret in re.findall(r"://[^:/@]+:([^@]*)@", str(value)):  # a URL's password
                assert re.fullmatch(r"\$\{[^}]+\}", secret), (key, value)
    bare = re.sub(r"\$\{[^}]*\}", "", text)  # outside variable references: no value
    assert not re.search(r"PASSWORD[\"']?\s*[:=][ \t]*[\"']?[^\s\"']", bare)
    example = (FOLDER / ".env.example").read_text()
    assert re.search(r"^POSTGRES_PASSWORD=$", example, re.M)
    assert re.search(r"^GAME_DB_PASSWORD=$", example, re.M)
    ignored = subprocess.run(["git", "check-ignore", "-q", str(FOLDER / ".env")], cwd=ROOT)
    assert ignored.returncode == 0  # the real .env is never committed


def test_compose_game_service_uses_the_game_role_and_the_dockerfile(compose):
    game_service = compose["services"]["game-server"]
    assert (ROOT / game_service["build"]["context"].replace("..", ".")).resolve() == ROOT
    url = game_service["environment"]["GAME_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://game_server:${GAME_DB_PASSWORD")
    assert url.endswith("/game") and game_service["depends_on"]["db"] == {
        "condition": "service_healthy"
    }


def dockerfile() -> list[tuple[str, str]]:
    """The root Dockerfile's instructions, (INSTRUCTION, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_installs_the_package_and_runs_it_unprivileged():
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = [args for op, args in steps if op == "RUN"]
    assert any("pip install" in r and "[pg]" in r for r in runs)
    users = [i for i, (op, _) in enumerate(steps) if op == "USER"]
    cmd = [i for i, (op, _) in enumerate(steps) if op == "CMD"]
    assert users and cmd and users[-1] < cmd[-1]
    assert steps[users[-1]][1] not in ("root", "0")
    assert "game-server run" in steps[cmd[-1]][1] and "0.0.0.0" in steps[cmd[-1]][1]
    for op, args in steps:
        if op == "COPY":  # everything copied is let through by .dockerignore
            for src in shlex.split(args)[:-1]:
                assert (ROOT / src).exists(), src
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore and "!game_server/" in ignore and "!pyproject.toml" in ignore
