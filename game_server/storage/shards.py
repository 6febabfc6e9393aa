"""Shards: a game's customer as N processes, each owning the teams of its shard, and their leases.

For an event of a thousand teams one process is not enough (docs/DESIGN.md, "Shards"), so
`game-server run --shard I/N` runs the game loop for the teams whose id falls in shard I
(`Shard.owns`: a stable rule, team ids never change). The shards share nothing but the
game database: the `games` row (state and phase clock), the requests (each round's
applicant, inserted once by whichever shard comes first), the results and totals of
their own teams, and one lease each (`loop_leases`, one row per shard). Without
`--shard` the game runs as shard 1/1: the same code, one row.

A lease names its loop (`host:pid:random`) and its last heartbeat. A loop silent for
`LEASE_SECONDS` is dead, and a dead pid on the same host is taken over at once, so a
restart after `kill -9` needs no waiting. The `games` row keeps the last heartbeat of any
shard (`loop_owner`, `loop_heartbeat`) for the board's "game loop alive".
"""

import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from game_server.storage import games, writes
from game_server.storage.games import GameBusy
from game_server.storage.schema import loop_leases, round_shards

log = logging.getLogger(__name__)

LEASE_SECONDS = 10.0  # a loop silent this long is dead; its shard may be taken over
MAX_SHARDS = 64
SHARD_RULE = "a shard is I/N with 1 <= I <= N <= 64, e.g. 1/2"


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count` (1-based): the teams with (id - 1) % count == index - 1."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """`I/N` as a Shard; ValueError with one line otherwise."""
        i, sep, n = text.strip().partition("/")
        if not (sep and i.isdigit() and n.isdigit()):
            raise ValueError(f"bad shard {text!r}: {SHARD_RULE}")
        shard = cls(int(i), int(n))
        if not 1 <= shard.index <= shard.count <= MAX_SHARDS:
            raise ValueError(f"bad shard {text!r}: {SHARD_RULE}")
        return shard

    def owns(self, team_id: int) -> bool:
        """Whether this shard's loop sends to (and scores) team `team_id`."""
        return (team_id - 1) % self.count == self.index - 1

    def __str__(self) -> str:
        """`I/N`, as typed on the command line."""
        return f"{self.index}/{self.count}"


WHOLE = Shard()  # the game as one shard, 1/1: a game run without --shard


def _owner_alive(owner: str | None, heartbeat: float | None, now: float) -> bool:
    """Whether the loop named `owner` may still be running."""
    if not owner or heartbeat is None or now - heartbeat > LEASE_SECONDS:
        return False
    host, _, rest = owner.partition(":")
    if host == socket.gethostname():  # on this machine a dead pid settles it at once
        try:
            os.kill(int(rest.partition(":")[0]), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError):
            return True
    return True


def _check_others(rows: list[Any], owner: str, shard: Shard, now: float) -> None:
    """GameBusy when a live loop holds this shard, or runs a shard of another count."""
    for r in rows:
        if r["owner"] == owner or not _owner_alive(r["owner"], r["heartbeat"], now):
            continue
        age = now - r["heartbeat"]
        if r["shard"] == shard.index:
            raise GameBusy(
                f"another game loop is running this game (shard {shard}, owner={r['owner']}, "
                f"last heartbeat {age:.1f} s ago); stop it first"
            )
        if r["shard_count"] != shard.count:
            raise GameBusy(
                f"shard {r['shard']}/{r['shard_count']} is running this game (owner="
                f"{r['owner']}): every shard must be I/{r['shard_count']}, not {shard}"
            )


def acquire_lease(engine: sa.Engine, owner: str, shard: Shard = WHOLE) -> None:
    """Become the loop of `shard`; GameBusy while another live loop holds it."""
    now = time.time()
    with engine.begin() as conn:
        games.game_row(conn)  # NotInitialised before anything else
        rows = list(conn.execute(sa.select(loop_leases)).mappings())
        _check_others(rows, owner, shard, now)
        mine = next((r for r in rows if r["shard"] == shard.index), None)
        values = {"shard_count": shard.count, "owner": owner, "heartbeat": now}
        if mine is None:
            try:
                with conn.begin_nested():
                    conn.execute(loop_leases.insert().values(shard=shard.index, **values))
            except sa.exc.IntegrityError:
                raise GameBusy("another game loop took this shard at the same moment") from None
        else:
            cur = loop_leases.c.owner
            same = cur.is_(None) if mine["owner"] is None else cur == mine["owner"]
            done = conn.execute(
                loop_leases.update().where(loop_leases.c.shard == shard.index, same).values(values)
            ).rowcount
            if not done:
                raise GameBusy("another game loop took this shard at the same moment; try again")
        games.note_loop(conn, owner, now)


def live_loops(conn: sa.Connection, now: float) -> list[str]:
    """Every shard (`I/N`) whose game loop holds a live lease: a `run` serving this game."""
    rows = conn.execute(sa.select(loop_leases)).mappings()
    return [
        f"{r['shard']}/{r['shard_count']}"
        for r in rows
        if _owner_alive(r["owner"], r["heartbeat"], now)
    ]


def others_alive(conn: sa.Connection, shard: Shard, now: float) -> list[str]:
    """The shards (`I/N`) other than `shard` whose loop holds a live lease."""
    rows = conn.execute(sa.select(loop_leases).where(loop_leases.c.shard != shard.index))
    return [
        f"{r['shard']}/{r['shard_count']}"
        for r in rows.mappings()
        if _owner_alive(r["owner"], r["heartbeat"], now)
    ]


def heartbeat(conn: sa.Connection, owner: str, shard: Shard, now: float) -> bool:
    """Renew the lease and checkpoint the running clock; False when the lease is lost."""
    held = conn.execute(
        loop_leases.update()
        .where(loop_leases.c.shard == shard.index, loop_leases.c.owner == owner)
        .values(heartbeat=now)
    ).rowcount
    if not held:
        return False
    games.checkpoint(conn, owner, now)
    return True


def release_lease(engine: sa.Engine, owner: str, shard: Shard = WHOLE) -> None:
    """Stop being the shard's loop; the last live shard also stops the clock (folded in)."""
    now = time.time()
    with engine.begin() as conn:
        released = conn.execute(
            loop_leases.update()
            .where(loop_leases.c.shard == shard.index, loop_leases.c.owner == owner)
            .values(owner=None, heartbeat=None)
        ).rowcount
        if not released or others_alive(conn, shard, now):
            return  # the other shards go on: the game's clock runs on
        games.no_loop_left(conn, now)


def recover(engine: sa.Engine, shard: Shard = WHOLE) -> int:
    """After a (crash and) restart: void the shard's rounds left `sent`; restart the clock.

    The clock restarts (from its last checkpoint) only when no other shard is alive: a
    live shard keeps it running, and its time is the game's.
    """
    now = time.time()
    with engine.begin() as conn:
        voided = writes.void_requests(conn, None, shard.index)
        alive = others_alive(conn, shard, now)
        if not alive:
            games.restart_clock(conn, now)
    if voided:
        log.warning(
            "voided rounds left unscored by a stopped loop shard=%s count=%d", shard, voided
        )
    if alive:
        log.info("other shards alive shard=%s alive=%s; the clock runs on", shard, ",".join(alive))
    return voided


def phase_progress(conn: sa.Connection, shard: Shard, first_seq: int, last_seq: int) -> int:
    """How many rounds of a phase (seqs first_seq..last_seq) the shard has started.

    Every round up to the shard's highest seq has started (or was skipped), so a loop
    restarted mid-phase goes on from there. Its own rows, not the other shards': a shard
    that looks a moment after another must still send the burst they share.
    """
    r = round_shards.c
    query = sa.select(sa.func.max(r.seq)).where(
        r.shard == shard.index, r.seq >= first_seq, r.seq <= last_seq
    )
    top = conn.execute(query).scalar()
    return 0 if top is None else int(top) - first_seq + 1
