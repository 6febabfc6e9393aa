"""The `games` row: the one module that writes it (game file, control actions, clock).

Several processes act on one game (the loop, the CLI, web workers), so every write that
depends on what was read is conditional (`change`): it lands only when the row is still
as read. Control actions decide *what* changes (`control.py`), the phase clock's
arithmetic is `clock.py`; the SQL is here.

`loop_owner` and `loop_heartbeat` name the last game loop to beat (any shard's); the
leases of the loops are `shards`.
"""

import logging
import os
import secrets
import socket
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa

from game_server.storage.clock import PhaseClock
from game_server.storage.schema import GAME_ID, games, phases, stream_secret

log = logging.getLogger(__name__)


NO_TABLES = "the game database has no tables: run `game-server init`"
SECRET_BYTES = 32  # the stream's secret: 256 random bits (scenario.stream wants >= 128)


class NotInitialised(RuntimeError):
    """The database has no game yet: `game-server init` creates it."""


class GameBusy(RuntimeError):
    """Another game loop holds this game's lease (or the game is another game file's)."""


# --- reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GameRow:
    """The `games` row as read (schema.py has each column's meaning); never written back
    whole: a change is a conditional update of some columns (`change`)."""

    id: int
    key: str  # the prefix of request ids
    name: str
    game_file: str | None
    settings: dict[str, Any]  # the game file's [game] table
    state: str  # lobby | running | paused | finished
    phase_index: int
    phase_elapsed: float  # the phase clock (clock.py)
    phase_resumed_at: float | None
    frozen: bool
    frozen_at: float | None
    frozen_board: dict[str, Any] | None  # the public standings as they were at the freeze
    created_at: float
    started_at: float | None
    finished_at: float | None
    loop_owner: str | None  # the last game loop to beat, and when
    loop_heartbeat: float | None

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> "GameRow":
        """The row from its columns (a RowMapping, or a dict of them)."""
        return cls(**{f.name: row[f.name] for f in fields(cls)})


def game_row(conn: sa.Connection) -> GameRow:
    """The game's row; NotInitialised when there is none."""
    try:
        row = conn.execute(sa.select(games).where(games.c.id == GAME_ID)).mappings().first()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        text = str(exc)
        if "no such table" in text or "does not exist" in text:
            raise NotInitialised(NO_TABLES) from None
        raise
    if row is None:
        raise NotInitialised("the game database has no game: run `game-server init`")
    return GameRow.of(row)


def phase_list(conn: sa.Connection) -> list[dict[str, Any]]:
    """The game's phases in order, as dicts."""
    rows = conn.execute(sa.select(phases).order_by(phases.c.idx)).mappings()
    return [dict(r) for r in rows]


# --- the game file ----------------------------------------------------------------------


def create_game(conn: sa.Connection, name: str = "", game_file: str | None = None) -> bool:
    """Insert the one game row (in the lobby) when missing; True when it was created."""
    if conn.execute(sa.select(games.c.id)).first() is not None:
        return False
    conn.execute(
        games.insert().values(
            id=GAME_ID,
            key=secrets.token_hex(3),  # the prefix of request ids
            name=name,
            game_file=game_file,
            settings={},
            state="lobby",
            created_at=time.time(),
        )
    )
    return True


def add_stream_secret(conn: sa.Connection) -> bool:
    """Make the stream's secret when the database has none; True when it was made.

    A new game gets it with its game row. A database made before the secret gets one at
    its next start: the rounds stored are unchanged, later rounds draw with the secret.
    """
    if conn.execute(sa.select(stream_secret.c.id)).first() is not None:
        return False
    conn.execute(
        stream_secret.insert().values(
            id=GAME_ID, secret=secrets.token_hex(SECRET_BYTES), created_at=time.time()
        )
    )
    state = conn.execute(sa.select(games.c.state)).scalar()
    if state not in (None, "lobby"):
        log.warning("stream secret added to a game started without one state=%s", state)
    log.info("stream secret made bits=%d", SECRET_BYTES * 8)  # never the secret itself
    return True


def read_stream_secret(conn: sa.Connection) -> str:
    """The stream's secret (hex), for the game loops only; NotInitialised when missing."""
    try:
        secret = conn.execute(sa.select(stream_secret.c.secret)).scalar()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        if "no such table" in str(exc) or "does not exist" in str(exc):
            secret = None  # a database made before the secret
        else:
            raise
    if secret is None:
        raise NotInitialised("the game database has no stream secret: run `game-server init`")
    secret = str(secret)
    if len(secret) < SECRET_BYTES or not all(c in string.hexdigits for c in secret):
        # one line that does not show it: the game cannot draw a private stream from it
        raise NotInitialised(
            "the game database's stream secret is damaged (not 128+ bits of hex): restore "
            "the database, or start a new game with `game-server init` on a new one"
        )
    return secret


def configure_game(
    conn: sa.Connection,
    name: str,
    game_file: str,
    settings: dict[str, Any],
    phase_rows: list[dict[str, Any]],
) -> None:
    """Store the game file's name, settings and phases (replacing the phases)."""
    conn.execute(
        games.update()
        .where(games.c.id == GAME_ID)
        .values(name=name, game_file=game_file, settings=settings)
    )
    conn.execute(phases.delete())
    conn.execute(phases.insert(), [{"idx": i, **p} for i, p in enumerate(phase_rows)])


# --- conditional changes ----------------------------------------------------------------


def change(conn: sa.Connection, seen: GameRow, values: Mapping[str, Any]) -> bool:
    """Write `values` if the row is still as `seen` (state, phase, freeze, clock); landed?

    The clock's start time is part of the check because new clock values are computed
    from the clock that was read: a pause and resume in between must not be counted.
    """
    resumed, seen_resumed = games.c.phase_resumed_at, seen.phase_resumed_at
    done = conn.execute(
        games.update()
        .where(
            games.c.id == GAME_ID,
            games.c.state == seen.state,
            games.c.phase_index == seen.phase_index,
            games.c.frozen == seen.frozen,
            resumed.is_(None) if seen_resumed is None else resumed == seen_resumed,
        )
        .values(**values)
    ).rowcount
    return bool(done)


def restart_clock(conn: sa.Connection, now: float) -> None:
    """A starting loop's running game goes on from its last checkpoint (see PhaseClock)."""
    g = game_row(conn)
    if g.state == "running":
        change(conn, g, PhaseClock.of(g).restart(now).columns())


# --- the game loop's heartbeat (the leases themselves: `shards`) -----------------------


def make_owner() -> str:
    """This process's lease name: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def checkpoint(conn: sa.Connection, owner: str, now: float) -> None:
    """Note a loop's heartbeat on the game row and checkpoint a running clock.

    The checkpoint folds the running stretch in every heartbeat, so after a `kill -9` the
    game loses at most a heartbeat of phase time (`restart_clock`). Several shards may
    checkpoint in turn: each fold keeps the phase time as it is.
    """
    note_loop(conn, owner, now)
    # The update above holds the row's write lock: nobody changes it before the commit.
    g = game_row(conn)
    if g.state == "running" and g.phase_resumed_at is not None:
        change(conn, g, PhaseClock.of(g).run(now).columns())


def note_loop(conn: sa.Connection, owner: str | None, now: float | None) -> None:
    """Write the last loop to beat (None, None: no loop runs the game)."""
    conn.execute(
        games.update().where(games.c.id == GAME_ID).values(loop_owner=owner, loop_heartbeat=now)
    )


def no_loop_left(conn: sa.Connection, now: float) -> None:
    """The last loop stopped cleanly: no loop named, the running stretch folded in."""
    note_loop(conn, None, None)
    g = game_row(conn)
    if g.phase_resumed_at is not None:
        change(conn, g, PhaseClock.of(g).stop(now).columns())
