"""The game database: its URL, the engine, creating it with its game file, shared settings.

SQLite by default, a file in WAL mode; PostgreSQL by URL (`postgresql+psycopg://...`). The
database is the only state shared between processes: the game loop writes rounds and
totals (`writes`), the web app (maybe several WSGI workers) and the CLI read (`standings`,
`queries`), and control actions are conditional updates of the game row (`games`).
"""

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from game_server.scenario.gamefile import GameFile
from game_server.storage import games
from game_server.storage.games import GameBusy
from game_server.storage.schema import metadata, web_settings

log = logging.getLogger(__name__)

DEFAULT_DB_PATH = Path("instance") / "game.sqlite"


def database_url(url: str | None = None) -> sa.URL:
    """`url`, else $GAME_DATABASE_URL, else the SQLite file instance/game.sqlite (cwd)."""
    url = url or os.environ.get("GAME_DATABASE_URL")
    if url:
        return sa.make_url(url)
    return sa.URL.create("sqlite", database=str(DEFAULT_DB_PATH))


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


def make_engine(url: str | None = None) -> sa.Engine:
    """An engine for the game database at `url` (see `database_url`)."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 10})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


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
        if g["state"] != "lobby":
            stored = [{k: v for k, v in p.items() if k != "idx"} for p in games.phase_list(conn)]
            if stored != phase_rows:
                raise GameBusy(
                    f"the game was started with another game file ({g['game_file']}); "
                    "use that file, or a new database for a new game"
                )
        games.configure_game(conn, game_file.settings.name, game_file.path, settings, phase_rows)
