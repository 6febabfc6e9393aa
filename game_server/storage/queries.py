"""The read queries of the team pages, the feedback API, monitoring and the control log.

The team pages are public: until a request's label is revealed, nothing here tells a
valid answer's outcome (GAME.md §6). A team's own results are read through the
(team_id, seq) index, so their cost does not grow with the game.
"""

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from game_server.common.records import CORRECT, FAILED, counts_latency, percentile
from game_server.storage.schema import control_log, requests, results, team_failures, teams

RESULTS_LIMIT_MAX = 500  # most results one page of a team's results shows


def team_by_name(conn: sa.Connection, name: str) -> sa.RowMapping | None:
    """The team called `name`, or None."""
    return conn.execute(sa.select(teams).where(teams.c.name == name)).mappings().first()


def _latest_results(
    conn: sa.Connection, team_id: int, limit: int, *columns: Any
) -> sa.CursorResult[Any]:
    """A team's latest `limit` results with their requests' `columns`, newest first."""
    return conn.execute(
        sa.select(*columns)
        .select_from(results.join(requests, requests.c.seq == results.c.seq))
        .where(results.c.team_id == team_id)
        .order_by(results.c.seq.desc())
        .limit(limit)
    )


def team_results(
    conn: sa.Connection, team_id: int, limit: int, now: float | None = None
) -> list[dict[str, Any]]:
    """A team's most recent results, newest first.

    Until a request's label is revealed, a valid answer shows as `answered` without its
    points: these pages are public, and `correct`/`wrong` beside the prediction would
    give every team the label before the feedback delay.
    """
    now = time.time() if now is None else now
    rows = _latest_results(
        conn,
        team_id,
        limit,
        results,
        requests.c.request_id,
        requests.c.oddities,
        requests.c.phase_index,
        requests.c.sent_at,
        requests.c.label_visible_at,
    ).mappings()
    out = []
    for r in rows:
        revealed = r["label_visible_at"] <= now
        hide = not revealed and r["outcome"] != FAILED
        out.append(
            {
                "request_id": r["request_id"],
                "seq": r["seq"],
                "phase_index": r["phase_index"],
                "sent_at": r["sent_at"],
                "oddities": r["oddities"],
                "outcome": "answered" if hide else r["outcome"],
                "points": None if hide else r["points"],
                "reason": r["reason"],
                "pred": r["pred"],
                "latency_ms": round(r["latency_ms"], 1),
                "status_code": r["status_code"],
                "body_excerpt": r["body_excerpt"],
                "revealed": revealed,
            }
        )
    return out


def _feedback_rows(conn: sa.Connection, team_id: int, after: int, limit: int) -> sa.Result[Any]:
    """Requests after the cursor, in seq order, each with the team's result if it has one."""
    res = results.alias("res")
    return conn.execute(
        sa.select(
            requests.c.seq,
            requests.c.request_id,
            requests.c.status,
            requests.c.features,
            requests.c.label,
            requests.c.sent_at,
            requests.c.label_visible_at,
            requests.c.phase_index,
            res.c.pred,
            res.c.outcome,
            res.c.reason,
            res.c.points,
        )
        .select_from(
            requests.outerjoin(res, sa.and_(res.c.seq == requests.c.seq, res.c.team_id == team_id))
        )
        .where(requests.c.seq > after)
        .order_by(requests.c.seq)
        .limit(limit)
    )


def feedback(
    conn: sa.Connection, team: sa.RowMapping, after: int, limit: int, now: float | None = None
) -> dict[str, Any]:
    """The team's revealed labels after the cursor `after` (a request seq), in seq order.

    Results are stored when a round completes, not in send order, and labels become
    visible one request at a time; so the walk stops at the first request that is not yet
    resolved or not yet visible, and the cursor never passes a request the team could
    still be owed. Void requests are included (status `void`, no outcome) for teams that
    existed when they were sent: their label is as true as any other.
    """
    now = time.time() if now is None else now
    items, cursor = [], after
    for r in _feedback_rows(conn, team["id"], after, limit).mappings():
        if r["status"] == "sent" or r["label_visible_at"] > now:
            break
        cursor = r["seq"]
        void_for_team = r["status"] == "void" and team["created_at"] <= r["sent_at"]
        if r["outcome"] is None and not void_for_team:
            continue  # not sent to this team (registered later, or disabled then)
        items.append(
            {
                "id": r["request_id"],
                "seq": r["seq"],
                "phase_index": r["phase_index"],
                "status": r["status"],
                "features": r["features"],
                "label": r["label"],
                "pred": r["pred"],
                "outcome": r["outcome"],
                "reason": r["reason"],
                "points": r["points"],
                "sent_at": r["sent_at"],
            }
        )
    return {"cursor": cursor, "items": items}


def team_failure_counts(conn: sa.Connection, team_id: int) -> dict[str, int]:
    """A team's failures by reason over the whole game (from the running totals)."""
    rows = conn.execute(
        sa.select(team_failures.c.reason, sa.func.sum(team_failures.c.count))
        .where(team_failures.c.team_id == team_id)
        .group_by(team_failures.c.reason)
    )
    return {reason: int(n) for reason, n in rows}


def _series_point(chunk: Sequence[sa.Row[Any]], now: float) -> dict[str, Any]:
    """Accuracy (revealed labels only) and latency of one bucket of results."""
    revealed = [r for r in chunk if r.label_visible_at <= now and r.outcome != FAILED]
    lat = sorted(r.latency_ms for r in chunk if counts_latency(r.status_code, r.reason))
    correct = sum(r.outcome == CORRECT for r in revealed)
    return {
        "at": round(chunk[-1].sent_at, 2),
        "results": len(chunk),
        "failed": sum(r.outcome == FAILED for r in chunk),
        "revealed": len(revealed),
        "accuracy": round(correct / len(revealed), 3) if revealed else None,
        "latency_p50": percentile(lat, 0.5),
        "latency_p95": percentile(lat, 0.95),
    }


def team_series(
    conn: sa.Connection,
    team_id: int,
    limit: int = 1000,
    bucket: int = 20,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """Accuracy and latency over a team's last `limit` results, in buckets of `bucket`.

    Public: accuracy counts only requests whose label is already visible. Reads at most
    `limit` rows through the (team_id, seq) index, whatever the size of the game.
    """
    now = time.time() if now is None else now
    rows = _latest_results(
        conn,
        team_id,
        limit,
        results.c.outcome,
        results.c.latency_ms,
        results.c.status_code,
        results.c.reason,
        requests.c.sent_at,
        requests.c.label_visible_at,
    ).all()[::-1]  # oldest first
    return [_series_point(rows[i : i + bucket], now) for i in range(0, len(rows), bucket)]


def last_revealed_at(conn: sa.Connection, now: float | None = None) -> float | None:
    """When the newest label that is visible now was sent (None before the first)."""
    now = time.time() if now is None else now
    return conn.execute(
        sa.select(sa.func.max(requests.c.sent_at)).where(requests.c.label_visible_at <= now)
    ).scalar()


def recent_features(
    conn: sa.Connection, phase_index: int | None, last: int
) -> list[dict[str, Any]]:
    """The feature dicts of the last `last` requests sent (in one phase, or the whole game)."""
    q = sa.select(requests.c.features).order_by(requests.c.seq.desc()).limit(last)
    if phase_index is not None:
        q = q.where(requests.c.phase_index == phase_index)
    return [f for (f,) in conn.execute(q)]


def requests_per_phase(conn: sa.Connection) -> dict[int, int]:
    """How many requests each phase has sent (void ones included)."""
    rows = conn.execute(
        sa.select(requests.c.phase_index, sa.func.count()).group_by(requests.c.phase_index)
    )
    return {int(p): int(n) for p, n in rows}


def control_log_recent(conn: sa.Connection, limit: int = 50) -> list[dict[str, Any]]:
    """The newest control actions first (who, when, what, whether it applied)."""
    rows = conn.execute(
        sa.select(control_log).order_by(control_log.c.id.desc()).limit(limit)
    ).mappings()
    return [dict(r) for r in rows]
