"""The reveal: public totals count a round's correct and wrong only once its label is visible.

A label becomes visible to its team `label_delay` seconds after the request was sent
(`requests.label_visible_at`, the feedback API's rule). Nothing public may tell it earlier
(GAME.md §6): a team that always answers 0 would read each label off the board's totals
if they moved when the round is scored. So every running total is kept twice
(`schema`): the true one, added when a round is scored (`writes.store_rounds`), and the
public one (`public_*`), which gets a failure's points at once (a failure tells nothing of
the label) and everything else here.

`reveal_labels` moves a watermark (`reveal_mark.seq`) over the requests in seq order and
stops at the first one whose label is not visible yet or that is still in flight
(`sent`): every request up to the watermark is counted in the public totals, none after
it. The game loop calls it about once a second on its database thread; each call reads
only the requests and results it passes (through the primary keys), so its cost follows
the rate of the game, never its length. The public standings read the public columns
until the game is finished; then everything is shown (`standings`).

The leaderboard's recent accuracy is kept the same way (`team_recent_labels`): the valid
answers and correct ones of the last `RECENT_ROUNDS` rounds up to the watermark, moved by
adding the rounds the watermark passes and taking away those that leave the window; a
step that passes a whole window or more counts the window afresh from what it read.
"""

import time
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from game_server.common.records import CORRECT, FAILED, WRONG
from game_server.storage.schema import (
    GAME_ID,
    phase_totals,
    requests,
    results,
    reveal_mark,
    round_shards,
    team_recent_labels,
    team_totals,
)
from game_server.storage.writes import PhaseTotals, TeamTotals, dialect_insert, upsert_add

IN_FLIGHT_LIMIT = 30.0  # s: a shard's round still `sent` this long after its send is lost
RECENT_ROUNDS = 100  # the leaderboard's accuracy: over the last 100 rounds with visible labels


def watermark(conn: sa.Connection) -> int:
    """The last request counted in the public totals (0 before the first)."""
    query = sa.select(reveal_mark.c.seq).where(reveal_mark.c.id == GAME_ID)
    return int(conn.execute(query).scalar() or 0)


def _next_mark(conn: sa.Connection, mark: int, now: float) -> int:
    """How far the watermark may move: to before the first request hidden or in flight.

    Reads the requests after `mark` in seq order up to the first that stops it; those
    whose label is visible are few (about a second's worth), the rest are not read. A
    round is in flight while any shard's part of it is `sent`, unless it was sent more
    than `IN_FLIGHT_LIMIT` ago: that shard died, and the board does not wait for it.
    """
    r, mine = requests.c, round_shards.c
    fresh = now - IN_FLIGHT_LIMIT
    stop = conn.execute(
        sa.select(r.seq)
        .where(
            r.seq > mark,
            sa.or_(sa.and_(r.status == "sent", r.sent_at > fresh), r.label_visible_at > now),
        )
        .order_by(r.seq)
        .limit(1)
    ).scalar()
    high = stop if stop is not None else conn.execute(sa.select(sa.func.max(r.seq))).scalar()
    if high is None:
        return mark
    flying = conn.execute(
        sa.select(sa.func.min(mine.seq)).where(
            mine.seq > mark, mine.seq <= high, mine.status == "sent", mine.sent_at > fresh
        )
    ).scalar()
    if flying is not None:
        return max(mark, int(flying) - 1)
    return max(mark, int(high) - 1 if stop is not None else int(high))


def _valid_answers(conn: sa.Connection, low: int, high: int) -> list[sa.Row[Any]]:
    """Per team and phase: points, correct and wrong of the valid answers with low < seq <= high."""
    res, req = results.c, requests.c
    return list(
        conn.execute(
            sa.select(
                res.team_id,
                req.phase_index,
                sa.func.sum(res.points).label("points"),
                sa.func.sum(sa.case((res.outcome == CORRECT, 1), else_=0)).label("correct"),
                sa.func.sum(sa.case((res.outcome == WRONG, 1), else_=0)).label("wrong"),
            )
            .select_from(results.join(requests, req.seq == res.seq))
            .where(res.seq > low, res.seq <= high, res.outcome != FAILED)
            .group_by(res.team_id, req.phase_index)
        )
    )


def _reference(conn: sa.Connection, low: int, high: int) -> dict[int, PhaseTotals]:
    """Per phase: the scored requests with low < seq <= high and their reference points."""
    r = requests.c
    rows = conn.execute(
        sa.select(
            r.phase_index,
            sa.func.count(),
            sa.func.sum(sa.func.coalesce(r.oracle_points, 0.0)),
            sa.func.sum(r.baseline_points),
        )
        .where(r.seq > low, r.seq <= high, r.status == "scored")
        .group_by(r.phase_index)
    )
    return {
        int(p): PhaseTotals(
            public_requests=int(n),
            public_oracle_points=float(oracle or 0.0),
            public_baseline_points=float(baseline or 0.0),
        )
        for p, n, oracle, baseline in rows
    }


def _team_rows(revealed: list[sa.Row[Any]]) -> list[dict[str, Any]]:
    """The public totals the revealed answers add, as `team_totals` rows (one per key)."""
    totals: dict[tuple[int, int], TeamTotals] = {}
    for r in revealed:
        t = totals.setdefault((r.team_id, r.phase_index), TeamTotals())
        t.public_points += int(r.points)
        t.public_correct += int(r.correct)
        t.public_wrong += int(r.wrong)
    return [t.row(team_id, phase) for (team_id, phase), t in totals.items()]


def _recent_rows(*changes: tuple[list[sa.Row[Any]], int]) -> list[dict[str, Any]]:
    """Per team, the valid and correct answers of rows counted with a sign (+1 or -1)."""
    change: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0])
    for rows, sign in changes:
        for r in rows:
            change[r.team_id][0] += sign * int(r.correct)
            change[r.team_id][1] += sign * (int(r.correct) + int(r.wrong))
    return [{"team_id": t, "correct": c, "answered": a} for t, (c, a) in change.items()]


def _reveal_answers(conn: sa.Connection, mark: int, new: int) -> list[sa.Row[Any]]:
    """Read the valid answers from `mark` to `new` once; move the recent window with them."""
    start = new - RECENT_ROUNDS  # the window after this step: (start, new]
    if start < mark:  # a short step: add what enters the window, take away what leaves it
        revealed = _valid_answers(conn, mark, new)
        leaving = _valid_answers(conn, mark - RECENT_ROUNDS, start)
        recent = _recent_rows((revealed, 1), (leaving, -1))
        upsert_add(conn, team_recent_labels, ("team_id",), recent)
        return revealed
    older, window = _valid_answers(conn, mark, start), _valid_answers(conn, start, new)
    conn.execute(team_recent_labels.delete())  # the whole window is new: count it afresh
    rows = _recent_rows((window, 1))
    if rows:
        conn.execute(team_recent_labels.insert(), rows)
    return older + window


def _set_mark(conn: sa.Connection, seq: int, now: float) -> None:
    """Store the watermark (insert the row the first time)."""
    conn.execute(
        dialect_insert(conn, reveal_mark)
        .values(id=GAME_ID, seq=seq, at=now)
        .on_conflict_do_update(index_elements=["id"], set_={"seq": seq, "at": now})
    )


def reveal_labels(conn: sa.Connection, now: float | None = None) -> int:
    """Count the rounds whose label became visible in the public totals; how many it passed.

    In the caller's transaction: the totals and the watermark move together, so a reader
    never sees a round counted twice or half. Every shard calls it: the watermark's row
    is locked first, so one moves it at a time and the next one starts from there.
    """
    now = time.time() if now is None else now
    conn.execute(
        dialect_insert(conn, reveal_mark).values(id=GAME_ID, seq=0, at=now).on_conflict_do_nothing()
    )
    locked = sa.select(reveal_mark.c.seq).where(reveal_mark.c.id == GAME_ID).with_for_update()
    mark = int(conn.execute(locked).scalar() or 0)
    new = _next_mark(conn, mark, now)
    if new == mark:
        return 0
    revealed = _reveal_answers(conn, mark, new)
    upsert_add(conn, team_totals, ("team_id", "phase_index"), _team_rows(revealed))
    phases = [t.row(p) for p, t in _reference(conn, mark, new).items()]
    upsert_add(conn, phase_totals, ("phase_index",), phases)
    _set_mark(conn, new, now)
    return new - mark
