"""Shared fixtures and the rule for tests that need outside components.

A test marked `postgres`, `browser`, `ssh` or `root` needs that component. On a
developer's machine a missing component skips the test with a one-line reason; with
`CI=true` it fails the test instead, so CI can never pass by skipping.
"""

import functools
import logging
import os
import shutil
import uuid

import pytest
import sqlalchemy as sa

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
# A workshop server's settings file tells every command to load it (storage/database.py).
# The end-to-end tests set up a server on this machine; the other tests, and the commands
# they start, must not depend on whether one ran before: they see no such file.
os.environ["GAME_SYSTEM_ENV"] = "/nonexistent/game-server/env"
PG_ADMIN_URL = os.environ.get(
    "GAME_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def require(component: str, problem: str | None) -> None:
    """Skip (or, in CI, fail) the current test when `problem` says the component is missing."""
    if problem is None:
        return
    message = f"{component} is not available: {problem}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: missing components fail the run)", pytrace=False)
    pytest.skip(message)


@functools.cache
def postgres_problem() -> str | None:
    """Why PostgreSQL can't be used, or None when it can."""
    try:
        engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:  # any failure means the same thing here: not reachable
        return f"cannot connect to {PG_ADMIN_URL}: {str(exc).splitlines()[0]}"
    return None


def browser_problem() -> str | None:
    """Why headless Chromium can't be used, or None."""
    if shutil.which("chromium") is None:
        return "no `chromium` on PATH (apt-get install chromium)"
    return None


def ssh_problem() -> str | None:
    """Why an OpenSSH server can't be started, or None."""
    if not os.path.exists("/usr/sbin/sshd"):
        return "no /usr/sbin/sshd (apt-get install openssh-server)"
    return None


def root_problem() -> str | None:
    """Why root-only tests can't run, or None."""
    return None if os.geteuid() == 0 else "the tests are not running as root"


COMPONENTS = {
    "postgres": ("PostgreSQL", postgres_problem),
    "browser": ("Chromium", browser_problem),
    "ssh": ("OpenSSH server", ssh_problem),
    "root": ("root", root_problem),
}


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Apply the skip-or-fail rule for every component a test is marked with."""
    for marker, (component, problem) in COMPONENTS.items():
        if item.get_closest_marker(marker):
            require(component, problem())


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A fresh SQLite database file for one test."""
    return f"sqlite:///{tmp_path / 'game.sqlite'}"


@pytest.fixture(scope="session")
def pg_session_url() -> str:
    """A fresh PostgreSQL database for the whole test session, dropped at the end."""
    require("PostgreSQL", postgres_problem())
    name = f"gs_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_url(pg_session_url) -> str:
    """The session's PostgreSQL database, emptied of every table before the test."""
    engine = sa.create_engine(pg_session_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return pg_session_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request) -> str:
    """Run a test once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return request.getfixturevalue(name)


@pytest.fixture
def keep_logging():
    """Restore the root logger after a CLI call that configures it."""
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    yield
    root.setLevel(level)
    root.handlers[:] = handlers
