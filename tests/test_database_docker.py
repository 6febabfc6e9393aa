"""database_docker/: the init SQL and role script on a real PostgreSQL, a game on it as the
game's own role, the compose file's settings, and the root Dockerfile (read, not run:
no Docker engine runs on the test machines).
"""

import asyncio
import base64
import json
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dockerignore
import psycopg
import pytest
import sqlalchemy as sa
import yaml
from conftest import PG_ADMIN_URL
from engine_helpers import fast_game, peeking, play
from starter_helpers import free_port
from team_apis import TeamAPIs

from game_server.accounts import pgsql
from game_server.play import loop as game
from game_server.play import teams
from game_server.storage import control, database, games, standings
from game_server.storage import teams as registry

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "database_docker"
INIT_SQL = FOLDER / "initdb" / "01-workshop.sql"
ROLE_SCRIPT = FOLDER / "initdb" / "02-game-role.sh"
ADMIN = sa.engine.make_url(PG_ADMIN_URL)
PASSWORD = "test-Pw_" + uuid.uuid4().hex[:16]


def admin_conn(db: str = "postgres") -> psycopg.Connection:
    """An autocommit connection as the admin of the test server."""
    return psycopg.connect(
        host=ADMIN.host,
        port=ADMIN.port or 5432,
        user=ADMIN.username,
        password=ADMIN.password,
        dbname=db,
        autocommit=True,
    )


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
    weak = subprocess.run(
        ["bash", str(ROLE_SCRIPT)],
        env={**env, "GAME_DB_PASSWORD": "short"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert weak.returncode == 1 and weak.stderr.count("\n") == 1 and "16+" in weak.stderr
    missing = subprocess.run(["bash", str(ROLE_SCRIPT)], env=env, capture_output=True, text=True)
    assert missing.returncode == 1 and "GAME_DB_PASSWORD is not set" in missing.stderr
    ok = subprocess.run(
        ["bash", str(ROLE_SCRIPT)],
        env={**env, "GAME_DB_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=60,
    )
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
            assert not conn.execute(
                sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            ).scalar()
        game_file = fast_game()
        database.prepare_game(engine, game_file)
        token = teams.add_team(engine, "good", apis.start(peeking(engine)).url)
        control.apply(engine, "start", "tester")
        asyncio.run(play(game.Game(engine, game_file), engine))
        with engine.connect() as conn:
            assert games.game_row(conn).state == "finished"
            board = standings.leaderboard(conn)["teams"]
            assert registry.authenticate(conn, token)["name"] == "good"
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
    installs = [r for r in runs if "pip install" in r]
    # the game alone and its PostgreSQL driver: no demo, accounts or notebooks extra
    assert len(installs) == 1 and re.findall(r"\[([^\]]*)\]", installs[0]) == ["pg"]
    users = [i for i, (op, _) in enumerate(steps) if op == "USER"]
    cmd = [i for i, (op, _) in enumerate(steps) if op == "CMD"]
    assert users and cmd and users[-1] < cmd[-1]
    assert steps[users[-1]][1] not in ("root", "0")
    assert "game-server run" in steps[cmd[-1]][1] and "0.0.0.0" in steps[cmd[-1]][1]
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore and "!game_server/" in ignore and "!pyproject.toml" in ignore


def test_compose_passes_the_admin_token_from_the_environment(compose):
    """The instructor page needs GAME_ADMIN_TOKEN in the container: from database_docker/.env."""
    env = compose["services"]["game-server"]["environment"]
    assert re.fullmatch(r"\$\{GAME_ADMIN_TOKEN(:-)?\}", env["GAME_ADMIN_TOKEN"])
    assert re.search(r"^GAME_ADMIN_TOKEN=$", (FOLDER / ".env.example").read_text(), re.M)


def test_the_images_healthcheck_asks_the_game(tmp_path):
    """The HEALTHCHECK command, run as Docker runs it: 0 while `game-server web` answers
    /api/health for a game, non-zero when nothing listens."""
    (check,) = [args for op, args in dockerfile() if op == "HEALTHCHECK"]
    argv = json.loads(check.split("CMD", 1)[1])
    db = f"sqlite:///{tmp_path / 'game.sqlite'}"
    game = [sys.executable, "-m", "game_server", "--db", db]
    subprocess.run([*game, "init", "--game", "demo"], check=True, capture_output=True)
    port = free_port()
    env = {**os.environ, "GAME_PORT": str(port)}
    argv[0] = sys.executable  # the image's python: here, this one
    assert subprocess.run(argv, env=env, capture_output=True).returncode != 0  # nothing yet
    web = subprocess.Popen(
        [*game, "web", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            if subprocess.run(argv, env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the healthcheck never passed against a running game")
    finally:
        web.terminate()
        web.wait(timeout=10)


def committed_files(src: str) -> list[str]:
    """The committed files at or under `src` (what a clean clone's build context holds)."""
    listed = subprocess.run(
        ["git", "ls-files", "--", src], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return listed


def test_every_copy_source_passes_the_dockerignore_rules():
    """Each COPY source of the Dockerfile, and every file under it, is in the build context
    by Docker's own matching rules (a source left out stops `docker compose --profile game
    up --build` with "not found")."""
    rules = dockerignore.parse((ROOT / ".dockerignore").read_text())
    copies = [shlex.split(args)[:-1] for op, args in dockerfile() if op == "COPY"]
    sources = [src for srcs in copies for src in srcs]
    assert "setup.py" in sources and "game_server" in sources
    for src in sources:
        files = committed_files(src)
        assert files, f"COPY {src}: nothing committed there"
        left_out = [f for f in files if dockerignore.excluded(f, rules)]
        assert not left_out, f"COPY {src}: .dockerignore leaves out {left_out[:5]}"
    assert dockerignore.excluded("game_server/__pycache__/cli.cpython-311.pyc", rules)
    assert dockerignore.excluded("participant_starter/app.py", rules)  # not the game's


@pytest.mark.parametrize(
    ("patterns", "path", "left_out"),
    [
        ("*", "setup.py", True),
        ("*\n!setup.py", "setup.py", False),
        ("*\n!game_server/", "game_server/web/app.py", False),  # an exception for a folder
        ("*/temp*", "somedir/temporary.txt", True),  # Docker's own examples
        ("*/temp*", "temp.txt", False),
        ("*/*/temp*", "a/b/temp.txt", True),
        ("temp?", "tempa", True),
        ("temp?", "temp/ab", False),  # `temp?` needs one more character than `temp`
        ("**/*.go", "a/b/c.go", True),
        ("**/*.go", "c.go", True),
        ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),  # the last wins
        ("*.md\nREADME-secret.md\n!README*.md", "README-secret.md", False),
        ("/docs/", "docs/a/b.md", True),  # a leading or trailing slash is cleaned away
        ("[a-c]at", "bat", True),
        ("[^a-c]at", "bat", False),
    ],
)
def test_the_dockerignore_matcher_follows_dockers_rules(patterns, path, left_out):
    """The examples of Docker's documentation, and the rules the Dockerfile relies on."""
    assert dockerignore.excluded(path, dockerignore.parse(patterns)) is left_out
