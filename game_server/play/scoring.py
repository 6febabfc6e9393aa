"""Scoring one HTTP exchange: outcome (correct | wrong | failed), reason, pred and points.

Pure functions, no I/O: `customer.py` does the HTTP and hands over what came back (or
the reason nothing valid did). The rules are GAME.md §2 and §3: a valid answer is HTTP
200 with a JSON body the protocol reads a prediction from, and that prediction is 0 or 1.

`Score` and `Result` (a team's scored answer), the outcomes and the latency rule are
records play and storage share: `game_server.common.records`.
"""

import json
import math
from collections.abc import Callable

from game_server.common.records import CORRECT, FAILED, POINTS, WRONG, Score

# Every reason a request can fail for, with what it tells the team. Declared once: the
# storage, the web pages and the docs read this table.
REASONS = {
    "timeout": "no complete answer within the time limit",
    "connect_error": "could not connect (refused, unreachable, name not found)",
    "connection_closed": "the API closed the connection before the answer was complete",
    "invalid_http": "what came back is not an HTTP response",
    "redirect": "answered with a redirect (3xx); redirects are never followed",
    "http_status": "answered with a status other than 200",
    "too_large": "the answer's body is larger than the limit",
    "invalid_json": "the answer's body is not JSON",
    "invalid_pred": "no valid prediction: it must be the integer 0 or 1",
    "host_not_allowed": "the URL's host is not on the game's allow-list",
    "wrong_owner": "another Linux user than the team's listens on the API's port",
    "internal_error": "the customer hit an unexpected error (see the game server log)",
}

EXCERPT_BYTES = 300  # how much of a failed answer's body is kept for the team to see


def excerpt(body: bytes | None) -> str | None:
    """The first bytes of a body as text, undecodable bytes replaced, for a team to read."""
    if body is None:
        return None
    return body[:EXCERPT_BYTES].decode("utf-8", errors="replace")


def failure(reason: str, status: int | None = None, body: bytes | None = None) -> Score:
    """A failed exchange: -1 point, why, and what came back (if anything)."""
    if reason not in REASONS:
        raise ValueError(f"unknown failure reason {reason!r}")
    return Score(FAILED, reason, None, POINTS[FAILED], status, excerpt(body))


def valid_pred(value: object) -> int | None:
    """The prediction as 0 or 1, or None when `value` is not a valid prediction.

    Valid: the integers 0 and 1, JSON true/false (as 1/0), and 0.0/1.0 (JSON does not tell
    integers from numbers with a zero fraction, and JSON Schema calls 1.0 an integer).
    Not valid: strings ("1", "yes"), lists ([1]), null, 2, 0.5, NaN.
    """
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value if value in (0, 1) else None
    if isinstance(value, float) and math.isfinite(value) and value in (0.0, 1.0):
        return int(value)
    return None


def parse_json(body: bytes) -> object:
    """The parsed JSON body; raises ValueError when the body is not JSON."""
    try:
        return json.loads(body)
    except RecursionError as exc:  # deeply nested arrays are not an answer either
        raise ValueError("JSON nested too deeply") from exc


def refusal(status: int, body: bytes | None = None) -> Score:
    """The failure for a status other than 200: `redirect` for 3xx, else `http_status`."""
    reason = "redirect" if 300 <= status < 400 else "http_status"
    return failure(reason, status, body)


def score_status(status: int, body: bytes | None = None) -> Score | None:
    """The failure for a non-200 status (`redirect` for 3xx), or None for 200."""
    if status == 200:
        return None
    return refusal(status, body)


def score_response(
    status: int,
    body: bytes,
    label: int,
    extract: Callable[[object], object],
    max_body_bytes: int,
) -> Score:
    """Score one HTTP response: status, body size, JSON, prediction, then correctness.

    `extract` is the protocol's reader: parsed JSON in, the raw prediction out (or None).
    `body` may be one byte longer than `max_body_bytes`: that is how a too large body is seen
    without reading it all.
    """
    refused = score_status(status, body)
    if refused is not None:
        return refused
    if len(body) > max_body_bytes:
        return failure("too_large", status, body)
    try:
        doc = parse_json(body)
    except ValueError:  # includes UnicodeDecodeError
        return failure("invalid_json", status, body)
    pred = valid_pred(extract(doc))
    if pred is None:
        return failure("invalid_pred", status, body)
    outcome = CORRECT if pred == label else WRONG
    return Score(outcome, None, pred, POINTS[outcome], status, None)
