"""The game database: its URL, the engine, creating it with its game file, shared settings.

SQLite by default, a file in WAL mode; PostgreSQL by URL (`postgresql+psycopg://...`). The
database is the only state shared between processes: the game loop writes rounds and
totals (`writes`), the web app (maybe several WSGI workers) and the CLI read (`standings`,
`queries`), and control actions are conditional updates of the game row (`games`).

The game database holds every label, the secret of the customer's stream and the web
app's secret key, and teams have shell accounts on the game's machine: a SQLite
database's folder is created 0700 and its files 0600 (`private_sqlite_file`);
PostgreSQL's game database takes connections from its owner role only
(`database_docker/initdb/01-workshop.sql`).
"""

import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from game_server.common import settings
from game_server.scenario.gamefile import GameFile
from game_server.storage import games
from game_server.storage.games import GameBusy
from game_server.storage.schema import metadata, web_settings

log = logging.getLogger(__name__)

DEFAULT_DB_PATH = Path("instance") / "game.sqlite"
PRIVATE_FOLDER, PRIVATE_FILE = 0o700, 0o600
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")  # the database file and SQLite's own


def database_url(url: str | None = None) -> sa.URL:
    """`url`, else $GAME_DATABASE_URL, else the SQLite file instance/game.sqlite (cwd)."""
    url = url or settings.get(settings.DATABASE_URL)
    if url:
        return sa.make_url(url)
    return sa.URL.create("sqlite", database=str(DEFAULT_DB_PATH))


# The server's settings (scripts/setup_server.sh); GAME_SYSTEM_ENV moves it (the test suite
# does, so a server set up on the test machine does not change what other tests see).
SYSTEM_ENV = settings.get(settings.SYSTEM_ENV)


class NoDatabase(games.NotInitialised):
    """No database was chosen and the default one would be the wrong one (one line)."""


def command_engine(url: str | None, create: bool = False) -> sa.Engine:
    """The engine of a command: `url` or $GAME_DATABASE_URL, else the default file here.

    Never a silent second game: with no database chosen, on a server whose settings are in
    SYSTEM_ENV, every command says to load them; and only a command that creates a game
    (`create`: init, run) may create the default file in the current folder.
    """
    if not (url or settings.get(settings.DATABASE_URL)):
        if SYSTEM_ENV.exists():
            raise NoDatabase(
                f"the game's settings are in {SYSTEM_ENV} but not in this shell: run "
                f"`set -a; . {SYSTEM_ENV}; set +a` first (or pass --db URL)"
            )
        if not create and not DEFAULT_DB_PATH.exists():
            raise NoDatabase(
                f"no game database in this folder ({DEFAULT_DB_PATH.resolve()}): run "
                "`game-server init` here, or set GAME_DATABASE_URL"
            )
    return make_engine(url)


def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:
    """WAL (readers never block the writer), a busy timeout, and foreign keys on."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a crash of the process (kill -9); only a power cut
    # may lose the last transactions.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def private_sqlite_file(path: Path) -> None:
    """Make the SQLite game database private to this user, before SQLite opens it.

    A missing folder is created 0700; the database file is created 0600 when missing (an
    empty file is an empty database) and narrowed to 0600 when others may read it, with
    any -wal, -shm or -journal file beside it. SQLite gives the -wal and -shm files it
    creates later the database file's mode, so they are 0600 too. A file this user may
    not change is left as it is, with a warning.
    """
    folder = path.parent
    if not folder.exists():
        folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
        folder.chmod(PRIVATE_FOLDER)  # exactly 0700, whatever the umask
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE))
    except FileExistsError:
        pass
    except OSError as exc:  # SQLite says it again, in its own words, when it opens the file
        log.warning("cannot create the game database file=%s error=%s", path, exc)
    for suffix in SQLITE_SUFFIXES:
        file = path.with_name(path.name + suffix)
        try:
            if file.exists() and file.stat().st_mode & 0o077:
                file.chmod(PRIVATE_FILE)
        except OSError as exc:
            log.warning("cannot make the game database private file=%s error=%s", file, exc)


def _sqlite_path(parsed: sa.URL) -> Path | None:
    """The file of a SQLite URL; None in memory or for a `file:` URI (left as given)."""
    name = parsed.database
    if not name or name == ":memory:" or name.startswith("file:") or parsed.query.get("uri"):
        return None
    return Path(name)


def make_engine(url: str | None = None) -> sa.Engine:
    """An engine for the game database at `url` (see `database_url`)."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_path(parsed)
        if path is not None:
            private_sqlite_file(path)
        engine = sa.create_engine(parsed, connect_args={"timeout": 10})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


@contextlib.contextmanager
def snapshot(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A read-only connection whose every query sees the same moment of the database.

    Without it each statement of a page sees what was committed when it ran: a reveal
    committed between two of them shows a board whose parts disagree (an accuracy from
    labels its counts do not include yet). PostgreSQL: one REPEATABLE READ transaction.
    SQLite (WAL): pysqlite starts no transaction for a SELECT, so BEGIN here; the first
    read fixes the snapshot until the end, and readers never block the writer.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        conn.begin()
        try:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN")
            yield conn
        finally:
            conn.rollback()  # it wrote nothing: end the snapshot


def safe_url(engine: sa.Engine) -> str:
    """The engine's URL without a password, for logs and messages."""
    return engine.url.render_as_string(hide_password=True)


def init_db(engine: sa.Engine, name: str = "", game_file: str | None = None) -> bool:
    """Create the tables and the game row when missing; True when the game was created."""
    metadata.create_all(engine)
    with engine.begin() as conn:
        created = games.create_game(conn, name, game_file)
    if created:
        log.info("game database created url=%s", safe_url(engine))
    try:
        with engine.begin() as conn:
            games.add_stream_secret(conn)
    except sa.exc.IntegrityError:
        pass  # another process (a shard) made it at the same moment: every one reads that one
    return created


def shared_setting(engine: sa.Engine, key: str, make: Callable[[], str]) -> str:
    """The stored value of `key`, creating it with `make()` once (shared by every worker).

    Several WSGI worker processes may ask at once: the first insert wins and every
    process reads the winner's value back. The table is created by `init_db`.
    """
    query = sa.select(web_settings.c.value).where(web_settings.c.key == key)
    with engine.begin() as conn:
        value = conn.execute(query).scalar()
        if value is not None:
            return str(value)
    try:
        with engine.begin() as conn:
            conn.execute(web_settings.insert().values(key=key, value=make()))
    except sa.exc.IntegrityError:
        pass  # another worker stored it first
    with engine.begin() as conn:
        return str(conn.execute(query).scalar_one())


def json_safe(value: Any) -> Any:
    """`value` with tuples as lists, for a JSON column."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def prepare_game(engine: sa.Engine, game_file: GameFile) -> None:
    """Store the game file's settings and phases; refuse another file once started."""
    init_db(engine)
    phase_rows = [
        {
            "name": p.name,
            "kind": p.kind,
            "duration": p.duration,
            "rate": p.rate,
            "burst": p.burst,
            "description": p.description,
        }
        for p in game_file.phases
    ]
    settings = json_safe(dataclasses.asdict(game_file.settings))
    with engine.begin() as conn:
        g = games.game_row(conn)
        if g.state != "lobby":
            stored = [{k: v for k, v in p.items() if k != "idx"} for p in games.phase_list(conn)]
            if stored != phase_rows:
                raise GameBusy(
                    f"the game was started with another game file ({g.game_file}); "
                    "use that file, or a new database for a new game"
                )
        games.configure_game(conn, game_file.settings.name, game_file.path, settings, phase_rows)
