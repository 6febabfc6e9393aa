"""The JSON API: leaderboard, a team's recent results, delayed feedback, health.

Views are thin: they validate the query, call one query of `storage`, and return JSON.
Bad parameters are a 400 with `{"error": "<one line>"}`.
"""

import logging

from flask import Blueprint, jsonify, request

from game_server.play import teams
from game_server.storage import database as storage
from game_server.web import engine
from game_server.web.auth import bearer_token
from game_server.web.cache import cached_json

log = logging.getLogger(__name__)

api = Blueprint("api", __name__, url_prefix="/api")

FEEDBACK_LIMIT_MAX = 1000
TOKEN_REQUIRED = "a valid team token is required: Authorization: Bearer <token>"


class BadRequest(ValueError):
    """A bad query parameter; the message is the one-line error."""


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """The integer query parameter `name` within [low, high]; BadRequest otherwise."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, not {raw[:40]!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, not {value}")
    return value


@api.errorhandler(BadRequest)
def bad_request(exc: BadRequest):
    """A bad parameter: 400 with the one-line reason."""
    return jsonify(error=str(exc)), 400


@api.errorhandler(storage.NotInitialised)
def not_initialised(exc: storage.NotInitialised):
    """No game in the database yet."""
    return jsonify(error=str(exc)), 503


@api.get("/health")
def health():
    """Whether the database answers, and the game's state."""
    try:
        with engine().connect() as conn:
            state = storage.game_row(conn)["state"]
    except storage.NotInitialised as exc:
        return jsonify(ok=False, error=str(exc)), 503
    except Exception as exc:  # any database failure means the same: not healthy
        log.warning("health check failed error=%s", type(exc).__name__)
        return jsonify(ok=False, error="the database does not answer"), 503
    return jsonify(ok=True, state=state)


@api.get("/leaderboard")
def leaderboard():
    """The standings (the frozen snapshot while frozen), the clock and the reference."""

    def compute() -> dict:
        with engine().connect() as conn:
            return storage.leaderboard(conn)

    return cached_json("leaderboard", compute)  # every open page polls this every second


@api.get("/teams/<name>/results")
def team_results(name: str):
    """A team's most recent results (`limit`, 1..500, default 50), newest first.

    Public without a token; with the team's own token (Bearer) also its predictions and
    the body excerpts of its failures. A wrong token is a 401.
    """
    limit = int_arg("limit", 50, 1, storage.RESULTS_LIMIT_MAX)
    with engine().connect() as conn:
        team = storage.team_by_name(conn, name)
        if team is None:
            return jsonify(error=f"no team called {name[:40]!r}"), 404
        private = None
        if request.headers.get("Authorization"):  # the team's own view, with its token
            private = teams.authenticate(conn, bearer_token())
            if private is None or private["id"] != team["id"]:
                log.warning("team results 401 client=%s team=%s", request.remote_addr, name)
                return jsonify(error="this is not the token of this team"), 401
        rows = storage.team_results(conn, team["id"], limit)
    if private is None:
        rows = [public_result(r) for r in rows]
    return jsonify(team=team["name"], private=private is not None, results=rows)


def public_result(row: dict) -> dict:
    """What anyone may see of a result: no body excerpt, no prediction before the label."""
    return {**row, "body_excerpt": None, "pred": row["pred"] if row["revealed"] else None}


@api.get("/feedback")
def feedback():
    """The calling team's revealed labels after `after` (a cursor; start with 0)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    with engine().connect() as conn:
        team = teams.authenticate(conn, token.strip()) if scheme.lower() == "bearer" else None
        if team is None:
            log.warning(
                "feedback 401 client=%s reason=%s",
                request.remote_addr,
                "missing token" if not header else "wrong token",
            )
            return jsonify(error=TOKEN_REQUIRED), 401
        after = int_arg("after", 0, 0, 2**62)
        limit = int_arg("limit", 500, 1, FEEDBACK_LIMIT_MAX)
        return jsonify(storage.feedback(conn, team, after, limit))
