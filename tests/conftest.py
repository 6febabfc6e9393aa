"""Shared fixtures and the rule for tests that need outside components.

A test marked `postgres`, `browser`, `ssh` or `root` needs that component. On a
developer's machine a missing component skips the test with a one-line reason; with
`CI=true` it fails the test instead, so CI can never pass by skipping.
"""

import functools
import logging
import os
import shutil
import signal
import uuid

# One thread per model fit, in this process and every process a test starts (the demo's
# bots, notebook kernels, the starter): the parallelism is the xdist workers'. With an
# OpenMP or BLAS thread per core in each of them, their threads spin waiting for each other
# on a busy machine: a HistGradientBoosting fit took 20 s instead of 1 s on 2 cores.
for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

# Started in the background by a shell without job control (`make test &`, a script),
# pytest begins with SIGINT ignored, and every process a test starts inherits that: the
# Ctrl-C tests would press Ctrl-C on processes deaf to it. A handled signal is reset to
# its default in a new program, so from here on the tests' processes hear it again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import pytest  # noqa: E402 (after the thread settings, before any library reads them)
import sqlalchemy as sa  # noqa: E402

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


# Tests that change or compare machine-wide state: setup_server.sh (it links
# /usr/local/bin/game-server), the end-to-end test's fixed user and database, /etc/passwd
# compared whole. Marked `system`; under `pytest -n N` they run on one worker, one after
# another.
SYSTEM_TESTS = (
    "tests/test_setup_server.py::",
    "tests/test_workshop_e2e.py::",
    "tests/test_accounts.py::test_bad_roster_changes_nothing",
    "tests/test_rehearsal.py::",  # uses /opt/workshop/venv, which setup_server.sh rebuilds
    "tests/test_fair_shares.py::",  # cgroups and pam limits of the machine
)


def xdist_unit(nodeid: str) -> str:
    """The unit of tests one xdist worker runs in order: "system", or the test's module.

    A module's tests share its module-scoped fixtures (a trained model, a played game, a
    built deck) on one worker instead of building them on each. Apart from the system
    tests, tests are independent (free ports, their own tmp_path, scratch databases, and
    Linux users and roles under a prefix of their own): modules run side by side.
    """
    return "system" if nodeid.startswith(SYSTEM_TESTS) else nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the system tests (`pytest -m system` runs them)."""
    for item in items:
        if item.nodeid.startswith(SYSTEM_TESTS):
            item.add_marker(pytest.mark.system)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """With `-n N` (xdist's default `--dist load`): hand out the units of `xdist_unit`.

    (xdist's own `--dist loadgroup` cannot be used: it renames test ids in a way that
    pytest 9 no longer takes.)
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    # Units in the order of collection, not by their count of tests: the system unit (the
    # end-to-end test, the longest) and the accounts tests start first, not last.
    config.option.loadscopereorder = False

    class ByUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_unit(nodeid)

    return ByUnit(config, log)


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
