"""A fresh game in the same database (`game-server new`): the old game's rows go, the
teams stay registered with their tokens, so a second workshop needs no new database.

Refused while the game runs: a game running or paused, or any `game-server run` still
holding a loop lease (it would go on writing into the new game).
"""

import logging
import time

import sqlalchemy as sa

from game_server.scenario.gamefile import GameFile
from game_server.storage import database, games, shards
from game_server.storage.schema import metadata, requests, teams, web_settings

log = logging.getLogger(__name__)

KEPT = (teams, web_settings)  # who plays, and the web's own settings (its secret key, hosts)


def still_running(conn: sa.Connection, now: float) -> str | None:
    """Why the stored game cannot be replaced now, or None."""
    row = games.game_row(conn)
    if row.state in ("running", "paused"):
        return f"the game is {row.state}: `game-server control finish` it first"
    loops = shards.live_loops(conn, now)
    if loops:
        return f"`game-server run` still serves this game (shard {', '.join(loops)}): stop it first"
    return None


def was_played(conn: sa.Connection) -> bool:
    """Whether the stored game was started or sent anything (then `new` exports it first)."""
    if games.game_row(conn).state != "lobby":
        return True
    return conn.execute(sa.select(requests.c.seq).limit(1)).first() is not None


def replace_game(engine: sa.Engine, game_file: GameFile) -> dict[str, int]:
    """Delete every row of the old game but the teams, then a new game in the lobby; the
    rows deleted per table. GameBusy (one line) while the old game runs."""
    with engine.begin() as conn:
        reason = still_running(conn, time.time())
        if reason:
            raise games.GameBusy(f"cannot start a new game: {reason}")
        deleted = {}
        for table in reversed(metadata.sorted_tables):  # children before their parents
            if table not in KEPT:
                deleted[table.name] = conn.execute(table.delete()).rowcount
    database.prepare_game(engine, game_file)  # the new game row, its phases and settings
    log.info(
        "new game url=%s game=%s deleted=%s",
        database.safe_url(engine),
        game_file.path,
        " ".join(f"{k}={v}" for k, v in deleted.items() if v),
    )
    return deleted


def finished_problem(conn: sa.Connection) -> str | None:
    """A line for `doctor` when the database still holds a finished game, else None."""
    row = games.game_row(conn)
    if row.state != "finished":
        return None
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.finished_at or 0))
    return (
        f"the game database holds a game that finished at {when}: `game-server new` "
        "starts a fresh one (it exports the old one first)"
    )
