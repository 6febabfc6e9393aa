"""A team's PostgreSQL role and schema: SCRAM verifiers, isolation, the shared init SQL."""

import base64
import uuid

import psycopg
import pytest

from game_server.accounts import apply, checks, config, pgsql
from game_server.accounts.executors import LocalExecutor

pytestmark = pytest.mark.postgres
ADMIN = "postgresql://postgres@127.0.0.1:5432/"
PSQL_ADMIN = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres"]


def admin(db: str = "postgres") -> psycopg.Connection:
    """An autocommit connection as the superuser."""
    return psycopg.connect(ADMIN + db, autocommit=True)


def test_quoting_doubles_quotes_and_refuses_nul():
    assert pgsql.quote_ident('a"b') == '"a""b"'
    assert pgsql.quote_literal("it's") == "'it''s'"
    with pytest.raises(ValueError):
        pgsql.quote_literal("a\0b")


def test_scram_verifier_matches_postgresqls_own():
    role = f"gstest_scram_{uuid.uuid4().hex[:8]}"
    with admin() as conn:
        try:
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute(f"CREATE ROLE {role} PASSWORD 'correct horse'")
            stored = conn.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
            ).fetchone()[0]
        finally:
            conn.execute(f"DROP ROLE IF EXISTS {role}")
    head, _, keys = stored.partition("$")[2].partition("$")
    iterations, salt = head.split(":")
    mine = pgsql.scram_verifier("correct horse", base64.b64decode(salt), int(iterations))
    assert mine == stored
    assert pgsql.scram_verifier("correct horse").startswith("SCRAM-SHA-256$4096:")
    assert pgsql.scram_verifier("x") != pgsql.scram_verifier("x")  # a fresh salt each time


@pytest.fixture
def team_db():
    """A fresh workshop and game database, two team roles in them; all dropped at the end."""
    tag = uuid.uuid4().hex[:8]
    settings = config.Settings(
        prefix=f"gst{tag[:4]}-",
        psql_admin=PSQL_ADMIN,
        workshop_db=f"gs_test_ws_{tag}",
        game_db=f"gs_test_game_{tag}",
        game_cmd=None,
    )
    roles = [f"{settings.prefix}a", f"{settings.prefix}b"]
    with admin() as conn:
        conn.execute(f"CREATE DATABASE {settings.game_db}")
    with admin(settings.game_db) as conn:
        conn.execute("CREATE TABLE teams (name text)")
    ex = LocalExecutor()
    try:
        apply.apply_init_sql(ex, settings)
        apply.apply_init_sql(ex, settings)  # twice: it is idempotent
        for role in roles:
            sql = pgsql.create_team_sql(role, role, pgsql.scram_verifier("pw-" + role))
            ex.run(settings.psql(settings.workshop_db), stdin=sql)
        with psycopg.connect(ADMIN + settings.workshop_db, user=roles[1], autocommit=True) as b:
            b.execute("CREATE TABLE secrets (x int)")
            b.execute("INSERT INTO secrets VALUES (42)")
        yield settings, roles
    finally:
        for role in roles:
            ex.run(
                settings.psql(settings.workshop_db),
                stdin=pgsql.drop_team_sql(role, role),
                check=False,
            )
        with admin() as conn:
            for db in (settings.workshop_db, settings.game_db):
                conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def test_team_a_uses_its_schema_and_nothing_else(team_db):
    settings, (a, b) = team_db
    with psycopg.connect(ADMIN + settings.workshop_db, user=a, autocommit=True) as conn:
        conn.execute("CREATE TABLE mine (x int)")  # search_path is the team's own schema
        conn.execute("INSERT INTO mine VALUES (1)")
        schema = conn.execute("SELECT schemaname FROM pg_tables WHERE tablename = 'mine'")
        assert schema.fetchone()[0] == a
        for stmt in (
            f'SELECT * FROM "{b}".secrets',
            f'CREATE TABLE "{b}".intruder (x int)',
            "CREATE TABLE public.shared (x int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(stmt)
        timeout = conn.execute("SHOW statement_timeout").fetchone()[0]
        assert timeout == "30s"
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(ADMIN + settings.game_db, user=a)
    with admin() as conn:
        rows = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolconnlimit, rolpassword"
            " FROM pg_authid WHERE rolname = ANY(%s)",
            ([a, b],),
        ).fetchall()
    assert len(rows) == 2
    for superuser, bypass, createrole, createdb, limit, password in rows:
        assert not (superuser or bypass or createrole or createdb) and limit == 5
        assert password.startswith("SCRAM-SHA-256$4096:")


def test_the_check_probes_report_the_isolation(team_db):
    settings, (a, b) = team_db
    _, _, err = LocalExecutor().run(
        checks._with_password(settings, a, settings.workshop_db),
        stdin="pw-" + a + "\n" + pgsql.isolation_sql(a, b),
    )
    assert pgsql.parse_probes(err) == pgsql.EXPECTED
    with admin(settings.workshop_db) as conn:  # the probes left nothing behind
        assert (
            conn.execute(
                "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'gs_check%'"
            ).fetchone()[0]
            == 0
        )
