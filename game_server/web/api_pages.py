"""The JSON endpoints the pages use, on the `api` blueprint: history, a team's summary,
monitoring, the instructor's JSON actions, the OpenAPI file, and conditional GETs.

Every GET answer carries an `ETag`; a poll with the same `If-None-Match` gets a 304, so a
room full of open leaderboards costs little while nothing changes.
"""

import logging
import time
from importlib import resources

from flask import Response, current_app, jsonify, request

from game_server.storage import control
from game_server.storage import database as storage
from game_server.web import engine
from game_server.web.api import BadRequest, api, int_arg
from game_server.web.auth import admin_token_ok, bearer_token, client
from game_server.web.cache import cached_json
from game_server.web.monitoring import Monitor

log = logging.getLogger(__name__)

HISTORY_POINTS = 300  # at most this many points per line of the chart
ADMIN_TOKEN_REQUIRED = "the instructor token is required: Authorization: Bearer <token>"


@api.after_request
def conditional(response: Response) -> Response:
    """ETag every successful GET, answer 304 when unchanged; browsers always revalidate."""
    if request.method == "GET" and response.status_code == 200:
        response.add_etag()
        response.make_conditional(request)
        private = request.headers.get("Authorization")
        response.headers["Cache-Control"] = "private, no-cache" if private else "no-cache"
    return response


def downsample(points: list, limit: int = HISTORY_POINTS) -> list:
    """At most `limit` points, evenly spaced, always keeping the first and the last."""
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


@api.get("/history")
def history():
    """Points over time per team with the oracle and baseline lines (≤300 points each)."""
    return cached_json("history", history_data)  # every open leaderboard polls this


def history_data() -> dict:
    """The chart's lines; while the leaderboard is frozen they stop at the freeze."""
    with engine().connect() as conn:
        g = storage.game_row(conn)
        data = storage.history(conn)
        board = storage.leaderboard(conn)
    end = g["frozen_at"] if board["frozen"] and g["frozen_at"] else None
    if end is not None:
        data = {
            "teams": {n: [p for p in s if p[0] <= end] for n, s in data["teams"].items()},
            "oracle": [p for p in data["oracle"] if p[0] <= end],
            "baseline": [p for p in data["baseline"] if p[0] <= end],
        }
    else:
        # The samples are seconds apart: end every line at the live totals.
        now = round(time.time(), 2)
        if g["state"] == "finished" and g["finished_at"]:
            now = g["finished_at"]
        if g["state"] != "lobby":
            for row in board["teams"]:
                data["teams"].setdefault(row["name"], []).append([now, row["points"]])
            data["oracle"].append([now, board["reference"]["oracle_points"]])
            data["baseline"].append([now, board["reference"]["baseline_points"]])
    start = g["started_at"]
    if start is not None:  # every line starts at 0 when the game starts
        for line in (*data["teams"].values(), data["oracle"], data["baseline"]):
            if not line or line[0][0] > start:
                line.insert(0, [start, 0])
    return {
        "started_at": g["started_at"],
        "frozen_at": end,
        "teams": {n: downsample(s) for n, s in data["teams"].items()},
        "oracle": downsample(data["oracle"]),
        "baseline": downsample(data["baseline"]),
    }


@api.get("/teams/<name>")
def team_summary(name: str):
    """A team's standing, failures by reason, accuracy and latency over time, label timing."""
    with engine().connect() as conn:
        team = storage.team_by_name(conn, name)
        if team is None:
            return jsonify(error=f"no team called {name[:40]!r}"), 404
        board = storage.leaderboard(conn)
        row = next((t for t in board["teams"] if t["name"] == team["name"]), None)
        settings = storage.game_row(conn)["settings"] or {}
        failures = storage.team_failure_counts(conn, team["id"])
        if board["frozen"]:
            failures = row["failures"] if row else {}
        series = storage.team_series(conn, team["id"])
        revealed_until = storage.last_revealed_at(conn)
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
def monitoring():
    """Drift of the last `last` requests (of phase `phase`, or all) against the training data."""
    raw = request.args.get("phase", "all")
    phase = None if raw in ("", "all") else int_arg("phase", 0, 0, 10_000)
    last = int_arg("last", 1000, 10, 5000)
    app = current_app
    monitor = app.extensions.get("game_monitor")
    if monitor is None:
        monitor = Monitor(engine(), float(app.config["MONITORING_CACHE_SECONDS"]))
        app.extensions["game_monitor"] = monitor
    return jsonify(monitor.report(phase, last))


@api.get("/openapi.json")
def openapi():
    """The hand-written OpenAPI 3.1 description of this API."""
    text = resources.files("game_server").joinpath("static/openapi.json").read_text("utf-8")
    return Response(text, mimetype="application/json")


def require_admin():
    """None when the request carries the instructor token, else a 401 response."""
    if admin_token_ok(bearer_token()):
        return None
    log.warning("admin api 401 client=%s path=%s", client(), request.path)
    return jsonify(error=ADMIN_TOKEN_REQUIRED), 401


@api.get("/admin/control-log")
def control_log():
    """The newest control actions (instructor token)."""
    denied = require_admin()
    if denied:
        return denied
    limit = int_arg("limit", 50, 1, 500)
    with engine().connect() as conn:
        return jsonify(actions=storage.control_log_recent(conn, limit))


@api.post("/admin/actions/<action>")
def admin_action(action: str):
    """Apply one control action (instructor token); 409 when the state does not allow it."""
    denied = require_admin()
    if denied:
        return denied
    if action not in control.ACTIONS:
        raise BadRequest(f"unknown action {action[:40]!r} (known: {', '.join(control.ACTIONS)})")
    try:
        row = control.apply(engine(), action, f"api:{client()}")
    except control.ControlError as exc:
        return jsonify(error=str(exc)), 409
    log.info("admin api action=%s client=%s state=%s", action, client(), row["state"])
    return jsonify(state=row["state"], phase_index=row["phase_index"], frozen=row["frozen"])
