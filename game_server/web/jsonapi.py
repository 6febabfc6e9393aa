"""What every JSON API blueprint shares: errors as one-line JSON, conditional GETs, and the
per-client budgets of the expensive endpoints.

Every GET answer carries an `ETag`; a poll with the same `If-None-Match` gets a 304, so a
room full of open leaderboards costs little while nothing changes.
"""

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, json, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from game_server.storage import games
from game_server.web.auth import Refused, client, client_key, request_team
from game_server.web.ratelimit import RequestBudget

log = logging.getLogger(__name__)

TOO_FAST = "too many requests to {group} from this client: try again in {wait} s"


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


def limited(group: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a view the budget `RATE_LIMITS[group]`: beyond it, a 429 with `Retry-After`
    (before the view's query or computation runs).

    A request with a team's token spends that team's budget, whatever its address; any
    other (no token, a wrong one) spends its client's (`client_key`: loopback is one), so
    a flood with a bogus token never takes a team's budget.
    """

    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def budgeted(*args: Any, **kwargs: Any) -> Any:
            budget = request_budget(group)
            team = request_team()
            wait = budget.take(f"team:{team['id']}" if team else client_key())
            if wait:
                refused = budget.log_due()  # one line per 10 s, however big the flood
                if refused:
                    log.warning(
                        "rate limited group=%s client=%s refused=%d", group, client(), refused
                    )
                raise Refused(
                    429, TOO_FAST.format(group=group, wait=wait), {"Retry-After": str(wait)}
                )
            return view(*args, **kwargs)

        return budgeted

    return wrap


def request_budget(group: str) -> RequestBudget:
    """This app's budget for `group` (from the config's RATE_LIMITS: per second, burst)."""
    budgets = current_app.extensions.setdefault("game_budgets", {})
    if group not in budgets:
        rate, burst = current_app.config["RATE_LIMITS"][group]
        budgets.setdefault(group, RequestBudget(float(rate), int(burst)))
    return budgets[group]


def json_api(blueprint: Blueprint) -> Blueprint:
    """Give an API blueprint the shared error handlers and conditional GETs."""
    blueprint.register_error_handler(BadRequest, bad_request)
    blueprint.register_error_handler(games.NotInitialised, not_initialised)
    blueprint.register_error_handler(Refused, refused)
    blueprint.register_error_handler(HTTPException, http_error)
    blueprint.after_request(conditional)
    return blueprint


def bad_request(exc: BadRequest) -> ResponseReturnValue:
    """A bad parameter: 400 with the one-line reason."""
    return jsonify(error=str(exc)), 400


def not_initialised(exc: games.NotInitialised) -> ResponseReturnValue:
    """No game in the database yet."""
    return jsonify(error=str(exc)), 503


def refused(exc: Refused) -> ResponseReturnValue:
    """The instructor's checks said no: the status with the one-line reason."""
    return jsonify(error=exc.message), exc.status, exc.headers


def http_error(exc: HTTPException) -> BaseResponse:
    """Flask's own refusals (405, 413, ...) as JSON too, with their headers (Allow)."""
    response = exc.get_response()
    response.data = json.dumps({"error": exc.description}).encode()
    response.content_type = "application/json"
    return response


def conditional(response: Response) -> Response:
    """ETag every successful GET, answer 304 when unchanged; browsers always revalidate."""
    if request.method == "GET" and response.status_code == 200:
        response.add_etag()
        response.make_conditional(request)
        private = request.headers.get("Authorization")
        response.headers["Cache-Control"] = "private, no-cache" if private else "no-cache"
    return response
