"""The public and team JSON API: leaderboard, history, a team's results and summary,
delayed feedback, monitoring, health and the OpenAPI file.

Views are thin: they validate the query, call one query of `storage`, and return JSON.
Bad parameters are a 400 with `{"error": "<one line>"}`.
"""

import logging
import time
from importlib import resources

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from game_server.storage import database, games, queries, standings
from game_server.storage import health as team_health
from game_server.web.auth import request_team
from game_server.web.cache import cached_json
from game_server.web.db import engine, find_team
from game_server.web.jsonapi import BadRequest, int_arg, json_api, limited
from game_server.web.monitoring import WINDOWS, Monitor, UnknownPhase

log = logging.getLogger(__name__)

api = json_api(Blueprint("api", __name__, url_prefix="/api"))

FEEDBACK_LIMIT_MAX = 1000
HISTORY_POINTS = 300  # at most this many points per line of the chart
TOKEN_REQUIRED = "a valid team token is required: Authorization: Bearer <token>"


@api.get("/health")
def health() -> ResponseReturnValue:
    """Whether the database answers, and the game's state."""
    try:
        with engine().connect() as conn:
            state = games.game_row(conn).state
    except games.NotInitialised as exc:
        return jsonify(ok=False, error=str(exc)), 503
    except Exception as exc:  # any database failure means the same: not healthy
        log.warning("health check failed error=%s", type(exc).__name__)
        return jsonify(ok=False, error="the database does not answer"), 503
    return jsonify(ok=True, state=state)


@api.get("/leaderboard")
def leaderboard() -> ResponseReturnValue:
    """The standings (the frozen snapshot while frozen), the clock and the reference."""

    def compute() -> dict:
        with database.snapshot(engine()) as conn:  # one moment: counts and accuracy agree
            board = standings.leaderboard(conn)
            team_health.overlay(conn, board)  # in the lobby: who is up, by the probe
            return board

    return cached_json("leaderboard", compute)  # every open page polls this every second


@api.get("/teams/<name>/results")
@limited("teams")
def team_results(name: str) -> ResponseReturnValue:
    """A team's most recent results (`limit`, 1..500, default 50), newest first.

    Public without a token; with the team's own token (Bearer) also its predictions and
    the body excerpts of its failures. A wrong token is a 401.
    """
    limit = int_arg("limit", 50, 1, queries.RESULTS_LIMIT_MAX)
    with engine().connect() as conn:
        team = find_team(conn, name)
        if team is None:
            return jsonify(error=f"no team called {name[:40]!r}"), 404
        private = None
        if request.headers.get("Authorization"):  # the team's own view, with its token
            private = request_team()
            if private is None or private["id"] != team["id"]:
                log.warning("team results 401 client=%s team=%s", request.remote_addr, name)
                return jsonify(error="this is not the token of this team"), 401
        rows = queries.team_results(conn, team["id"], limit)
    if private is None:
        rows = [public_result(r) for r in rows]
    return jsonify(team=team["name"], private=private is not None, results=rows)


def public_result(row: dict) -> dict:
    """What anyone may see of a result: no body excerpt, no prediction before the label."""
    return {**row, "body_excerpt": None, "pred": row["pred"] if row["revealed"] else None}


@api.get("/feedback")
@limited("feedback")
def feedback() -> ResponseReturnValue:
    """The calling team's revealed labels after `after` (a cursor; start with 0)."""
    header = request.headers.get("Authorization", "")
    team = request_team()  # asked once, by the budget (`limited`)
    with engine().connect() as conn:
        if team is None:
            log.warning(
                "feedback 401 client=%s reason=%s",
                request.remote_addr,
                "missing token" if not header else "wrong token",
            )
            return jsonify(error=TOKEN_REQUIRED), 401
        after = int_arg("after", 0, 0, 2**62)
        limit = int_arg("limit", 500, 1, FEEDBACK_LIMIT_MAX)
        return jsonify(queries.feedback(conn, team, after, limit))


def downsample(points: list, limit: int = HISTORY_POINTS) -> list:
    """At most `limit` points, evenly spaced, always keeping the first and the last."""
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


@api.get("/history")
def history() -> ResponseReturnValue:
    """Points over time per team with the oracle and baseline lines (≤300 points each)."""
    # Every open leaderboard polls this, every 3 s: computed on demand, at most every 0.5 s
    # (a refresher would compute it 6 times as often as it is asked for).
    return cached_json("history", history_data, keep_fresh=False)


def history_data() -> dict:
    """The chart's lines; while the leaderboard is frozen they stop at the freeze."""
    with database.snapshot(engine()) as conn:
        g = games.game_row(conn)
        data = standings.history(conn)
        board = standings.leaderboard(conn)
    end = g.frozen_at if board["frozen"] and g.frozen_at else None
    if end is not None:
        data = {
            "teams": {n: [p for p in s if p[0] <= end] for n, s in data["teams"].items()},
            "oracle": [p for p in data["oracle"] if p[0] <= end],
            "baseline": [p for p in data["baseline"] if p[0] <= end],
        }
    else:
        # The samples are seconds apart: end every line at the live totals.
        now = round(time.time(), 2)
        if g.state == "finished" and g.finished_at:
            now = g.finished_at
        if g.state != "lobby":
            for row in board["teams"]:
                data["teams"].setdefault(row["name"], []).append([now, row["points"]])
            data["oracle"].append([now, board["reference"]["oracle_points"]])
            data["baseline"].append([now, board["reference"]["baseline_points"]])
    start = g.started_at
    if start is not None:  # every line starts at 0 when the game starts
        for line in (*data["teams"].values(), data["oracle"], data["baseline"]):
            if not line or line[0][0] > start:
                line.insert(0, [start, 0])
    return {
        "started_at": g.started_at,
        "frozen_at": end,
        "teams": {n: downsample(s) for n, s in data["teams"].items()},
        "oracle": downsample(data["oracle"]),
        "baseline": downsample(data["baseline"]),
    }


@api.get("/teams/<name>")
@limited("teams")
def team_summary(name: str) -> ResponseReturnValue:
    """A team's standing, failures by reason, accuracy and latency over time, label timing."""
    with database.snapshot(engine()) as conn:
        team = find_team(conn, name)
        if team is None:
            return jsonify(error=f"no team called {name[:40]!r}"), 404
        board = standings.leaderboard(conn)
        team_health.overlay(conn, board)
        row = next((t for t in board["teams"] if t["name"] == team["name"]), None)
        settings = games.game_row(conn).settings or {}
        failures = queries.team_failure_counts(conn, team["id"])
        if board["frozen"]:
            failures = row["failures"] if row else {}
        series = queries.team_series(conn, team["id"])
        revealed_until = queries.last_revealed_at(conn)
    return jsonify(
        team=team["name"],
        active=bool(team["active"]),
        protocol=team["protocol"],
        game=board["game"],
        frozen=board["frozen"],
        standing=row,
        failures=failures,
        reasons={r: teams_reason(r) for r in failures},
        series=series,
        label_delay=settings.get("label_delay"),
        labels_revealed_until=revealed_until,
    )


def teams_reason(reason: str) -> str:
    """The one-line explanation of a failure reason."""
    from game_server.play.scoring import REASONS

    return REASONS.get(reason, reason)


@api.get("/monitoring")
@limited("monitoring")
def monitoring() -> ResponseReturnValue:
    """Drift of the last `last` requests (200, 1000 or 5000; of phase `phase`, or all)
    against the training data; each report computed at most once per interval."""
    raw = request.args.get("phase", "all")
    phase = None if raw in ("", "all") else int_arg("phase", 0, 0, 10_000)
    last = int_arg("last", 1000, 0, 10**9)
    if last not in WINDOWS:
        raise BadRequest(f"last must be one of {', '.join(map(str, WINDOWS))}, not {last}")
    app = current_app
    monitor = app.extensions.get("game_monitor")
    if monitor is None:
        monitor = Monitor(engine(), float(app.config["MONITORING_CACHE_SECONDS"]))
        monitor = app.extensions.setdefault("game_monitor", monitor)
    try:
        report = monitor.cached(phase, last)
    except UnknownPhase as exc:
        raise BadRequest(str(exc)) from None
    response = Response(report.text, mimetype="application/json")
    response.set_etag(report.etag)
    return response


@api.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The hand-written OpenAPI 3.1 description of this API."""
    text = resources.files("game_server").joinpath("static/openapi.json").read_text("utf-8")
    return Response(text, mimetype="application/json")
