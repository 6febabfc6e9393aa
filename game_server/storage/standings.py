"""The public standings: the game's clock, the leaderboard and the chart's history.

What `GET /api/leaderboard` and `GET /api/history` return, the freeze snapshot of the
control actions and the demo's final standings. They read the running totals tables
only, so their cost does not grow with the length of the game.

Public: until the game is finished they show the public totals (`reveal`), where a
round's correct / wrong and its reference points count only once its label is visible
(failures at once); the final standings show the true totals.
"""

import time
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from game_server.storage import clock, skips
from game_server.storage.clock import PhaseClock
from game_server.storage.games import GameRow, game_row, phase_list
from game_server.storage.schema import (
    phase_totals,
    points_history,
    reference_history,
    team_failures,
    team_recent,
    team_recent_labels,
    team_totals,
    teams,
)

LOOP_ALIVE_SECONDS = 5  # a loop whose heartbeat is older is shown as not running


def _time_left(
    g: GameRow, plist: list[dict[str, Any]], idx: int, now: float
) -> tuple[float, float]:
    """Seconds left of the phase and of the game: all of the phase in the lobby, none once over."""
    if g.state == "finished":
        return 0.0, 0.0
    ticking = clock.new_phase(None) if g.state == "lobby" else PhaseClock.of(g)
    left = ticking.left(plist[idx]["duration"], now)
    return left, clock.game_left(left, (q["duration"] for q in plist[idx + 1 :]))


def game_clock(conn: sa.Connection, now: float | None = None) -> dict[str, Any]:
    """The game's state, phase and time left, as the leaderboard shows them."""
    now = time.time() if now is None else now
    g = game_row(conn)
    plist = phase_list(conn)
    phase = None
    game_left = None
    if plist:
        idx = min(g.phase_index, len(plist) - 1)
        p = plist[idx]
        left, game_left = _time_left(g, plist, idx, now)
        phase = {
            "index": idx,
            "name": p["name"],
            "kind": p["kind"],
            "description": p["description"],
            "duration": p["duration"],
            "rate": p["rate"],
            "time_left": round(left, 1),
        }
    heartbeat = g.loop_heartbeat
    alive = heartbeat is not None and now - heartbeat < LOOP_ALIVE_SECONDS
    return {
        "name": g.name,
        "state": g.state,
        "phase": phase,
        "phase_count": len(plist),
        "time_left": None if game_left is None else round(game_left, 1),
        "frozen": bool(g.frozen),
        "loop_alive": bool(g.loop_owner) and alive,
    }


def _team_sums(conn: sa.Connection, final: bool) -> dict[int, Any]:
    """Every team's totals summed over the phases (rows named like the columns), by team id.

    The public totals, or with `final` the true ones.
    """
    tt = team_totals.c
    points, correct, wrong = (
        (tt.points, tt.correct, tt.wrong)
        if final
        else (tt.public_points, tt.public_correct, tt.public_wrong)
    )
    rows = conn.execute(
        sa.select(
            tt.team_id,
            sa.func.sum(points).label("points"),
            sa.func.sum(correct).label("correct"),
            sa.func.sum(wrong).label("wrong"),
            sa.func.sum(tt.failed).label("failed"),
            sa.func.sum(tt.latency_sum).label("latency_sum"),
            sa.func.sum(tt.latency_count).label("latency_count"),
        ).group_by(tt.team_id)
    )
    return {r.team_id: r for r in rows}


def _failures_by_team(conn: sa.Connection) -> dict[int, dict[str, int]]:
    """Every team's failures by reason over the whole game."""
    failures: dict[int, dict[str, int]] = defaultdict(dict)
    tf = team_failures.c
    for team_id, reason, n in conn.execute(
        sa.select(tf.team_id, tf.reason, sa.func.sum(tf.count)).group_by(tf.team_id, tf.reason)
    ):
        failures[team_id][reason] = int(n)
    return failures


def _board_row(
    team: sa.RowMapping,
    sums: Any,
    recent: Any,
    labels: Any,
    failures: dict[str, int],
) -> dict[str, Any]:
    """One team's leaderboard row (without its rank) from its sums and recent-window rows.

    The rows are None for a team without results yet (`labels`: without visible labels).
    """
    count = int(sums.latency_count) if sums else 0
    answered = int(labels.answered) if labels else 0
    return {
        "name": team["name"],
        "active": bool(team["active"]),
        "points": int(sums.points) if sums else 0,
        "correct": int(sums.correct) if sums else 0,
        "wrong": int(sums.wrong) if sums else 0,
        "failed": int(sums.failed) if sums else 0,
        "failures": failures,
        "latency_mean": round(sums.latency_sum / count, 1) if sums and count else None,
        "recent_window": recent.window if recent else 0,
        "accuracy": round(int(labels.correct) / answered, 3) if answered else None,
        "latency_p50": recent.latency_p50 if recent else None,
        "latency_p95": recent.latency_p95 if recent else None,
        "up": recent.up if recent else None,
    }


def _reference(conn: sa.Connection, final: bool) -> dict[str, Any]:
    """The reference lines so far: scored and void requests, oracle and baseline points.

    The lines count the `revealed` requests (with `final`, every scored one): a request's
    oracle and baseline points are built from its true probability, so they wait for its
    label like a team's points do.
    """
    pt = phase_totals.c
    counted, oracle, baseline = (
        (pt.requests, pt.oracle_points, pt.baseline_points)
        if final
        else (pt.public_requests, pt.public_oracle_points, pt.public_baseline_points)
    )
    ref = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(pt.requests), 0).label("requests"),
            sa.func.coalesce(sa.func.sum(counted), 0).label("revealed"),
            sa.func.coalesce(sa.func.sum(pt.void), 0).label("void"),
            sa.func.coalesce(sa.func.sum(oracle), 0.0).label("oracle"),
            sa.func.coalesce(sa.func.sum(baseline), 0.0).label("baseline"),
        )
    ).one()
    return {
        **skips.summary(conn, time.time()),  # rounds skipped, whole, and overload now
        "requests": int(ref.requests),
        "revealed": int(ref.revealed),
        "void": int(ref.void),
        "oracle_points": round(float(ref.oracle), 2),
        "baseline_points": round(float(ref.baseline), 2),
    }


def leaderboard_teams(conn: sa.Connection, final: bool = False) -> dict[str, Any]:
    """The standings: every team's totals and recent window, and the reference.

    Public (labels only once visible), or with `final` (a finished game) the true totals.
    """
    sums = _team_sums(conn, final)
    failures = _failures_by_team(conn)
    recent = {r.team_id: r for r in conn.execute(sa.select(team_recent))}
    labels = {r.team_id: r for r in conn.execute(sa.select(team_recent_labels))}
    board = [
        _board_row(
            t,
            sums.get(t["id"]),
            recent.get(t["id"]),
            labels.get(t["id"]),
            failures.get(t["id"], {}),
        )
        for t in conn.execute(sa.select(teams).order_by(teams.c.name)).mappings()
    ]
    board.sort(key=lambda r: (-r["points"], r["name"]))
    for rank, row in enumerate(board, 1):
        row["rank"] = rank
    return {"teams": board, "reference": _reference(conn, final)}


def leaderboard(conn: sa.Connection, now: float | None = None) -> dict[str, Any]:
    """What `GET /api/leaderboard` returns: the live clock, and the frozen or live standings.

    Live standings are public until the game is finished, then final (the true totals).
    """
    game = game_clock(conn, now)
    g = game_row(conn)
    if g.frozen and g.frozen_board:
        board = dict(g.frozen_board)
        board["frozen_at"] = g.frozen_at
    else:
        board = leaderboard_teams(conn, final=g.state == "finished")
    return {"game": game, "frozen": game["frozen"], **board}


def history(conn: sa.Connection, since: float = 0.0) -> dict[str, Any]:
    """The chart's samples after `since`: points per team name, and the reference lines."""
    series: dict[str, list[list[float]]] = defaultdict(list)
    for at, name, points in conn.execute(
        sa.select(points_history.c.at, teams.c.name, points_history.c.points)
        .join(teams, teams.c.id == points_history.c.team_id)
        .where(points_history.c.at > since)
        .order_by(points_history.c.at)
    ):
        series[name].append([at, points])
    ref = conn.execute(
        sa.select(reference_history)
        .where(reference_history.c.at > since)
        .order_by(reference_history.c.at)
    ).all()
    return {
        "teams": dict(series),
        "oracle": [[r.at, round(r.oracle_points, 2)] for r in ref],
        "baseline": [[r.at, round(r.baseline_points, 2)] for r in ref],
    }
