"""Rounds the game loops skipped, whole, by reason: stored for the board's reference.

A loop skips a round before its request row is written (play/shedding.py): when it cannot
send more in time ("overload"), when the database cannot be written ("database down") or
holds too many rounds waiting ("database slow"). The web pages share nothing with the
loop but the database, so each shard writes its counts with its heartbeat (`record`), and
the board reads their sums (`summary`): the skipped rounds, and whether the game is
overloaded right now, with what to do about it.
"""

from typing import Any

import sqlalchemy as sa

from game_server.storage.schema import loop_skips

OVERLOADED_SECONDS = 10.0  # a game with an overload skip this recent is shown as overloaded
OVERLOAD_ADVICE = "the game is overloaded: start another shard (docs/INSTRUCTOR.md, Shards)"


def record(
    conn: sa.Connection, shard: int, counts: dict[str, int], last_at: dict[str, float]
) -> None:
    """Store shard `shard`'s skip counts (totals since its loop started) and their times."""
    rows = [
        {"shard": shard, "reason": r, "count": n, "last_at": last_at.get(r)}
        for r, n in counts.items()
        if n
    ]
    if not rows:
        return
    conn.execute(loop_skips.delete().where(loop_skips.c.shard == shard))
    conn.execute(loop_skips.insert(), rows)


def summary(conn: sa.Connection, now: float) -> dict[str, Any]:
    """The skipped rounds by reason over every shard, and whether it is overloaded now."""
    c = loop_skips.c
    rows = conn.execute(
        sa.select(c.reason, sa.func.sum(c.count), sa.func.max(c.last_at)).group_by(c.reason)
    ).all()
    skipped = {reason: int(n) for reason, n, _ in rows}
    last = max((at for reason, _, at in rows if reason == "overload" and at), default=None)
    overloaded = last is not None and now - last < OVERLOADED_SECONDS
    return {
        "skipped": skipped,
        "overloaded": overloaded,
        "advice": OVERLOAD_ADVICE if overloaded else None,
    }


def of_shard(conn: sa.Connection, shard: int) -> dict[str, int]:
    """Shard `shard`'s stored counts (a restarted loop counts on from them)."""
    c = loop_skips.c
    rows = conn.execute(sa.select(c.reason, c.count).where(c.shard == shard))
    return {reason: int(n) for reason, n in rows}
