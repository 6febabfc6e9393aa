"""Scoring's pure functions: every reason, every valid and invalid prediction."""

import json

import pytest

from game_server.common import records
from game_server.play import protocols, scoring
from game_server.play.scoring import failure, score_response, score_status, valid_pred

native = protocols.PROTOCOLS["native"].extract
CAP = 1000


def score(body: bytes | str, status: int = 200, label: int = 1) -> records.Score:
    """Score a native answer with the test cap."""
    data = body.encode() if isinstance(body, str) else body
    return score_response(status, data, label, native, CAP)


@pytest.mark.parametrize(
    ("value", "pred"), [(0, 0), (1, 1), (True, 1), (False, 0), (1.0, 1), (0.0, 0)]
)
def test_valid_predictions(value, pred):
    """0, 1, true/false and integral floats are predictions."""
    assert valid_pred(value) == pred


@pytest.mark.parametrize(
    "value", ["1", "yes", [1], {"pred": 1}, 2, -1, 0.5, 1.5, None, float("nan"), float("inf")]
)
def test_invalid_predictions(value):
    """Strings, lists, objects, other numbers and null are not."""
    assert valid_pred(value) is None


def test_correct_and_wrong():
    """+1 for the label, 0 for the other class; no reason or excerpt."""
    assert score('{"pred": 1}', label=1) == records.Score("correct", None, 1, 1, 200, None)
    assert score('{"pred": 1}', label=0) == records.Score("wrong", None, 1, 0, 200, None)
    assert score('{"pred": false, "proba": 0.2}', label=0).outcome == "correct"


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, '{"pred": 1}', "http_status"),
        (201, '{"pred": 1}', "http_status"),
        (404, "Not Found", "http_status"),
        (301, "", "redirect"),
        (307, "", "redirect"),
        (200, "<html>hi</html>", "invalid_json"),
        (200, "", "invalid_json"),
        (200, b"\xff\xfe\x00garbage", "invalid_json"),
        (200, '{"pred": "yes"}', "invalid_pred"),
        (200, '{"pred": [1]}', "invalid_pred"),
        (200, '{"pred": 2}', "invalid_pred"),
        (200, '{"pred": 0.5}', "invalid_pred"),
        (200, '{"pred": null}', "invalid_pred"),
        (200, '{"pred": NaN}', "invalid_pred"),
        (200, '{"prediction": 1}', "invalid_pred"),
        (200, "[1]", "invalid_pred"),
        (200, "1", "invalid_pred"),
        (200, json.dumps({"pred": 1, "pad": "x" * CAP}), "too_large"),
    ],
)
def test_failures(status, body, reason):
    """Each bad answer is -1 with its reason, the status and the body's start."""
    result = score(body, status=status)
    assert (result.outcome, result.reason, result.pred, result.points) == (
        "failed",
        reason,
        None,
        -1,
    )
    assert result.status_code == status
    raw = body.encode() if isinstance(body, str) else body
    assert result.body_excerpt == raw[: scoring.EXCERPT_BYTES].decode("utf-8", "replace")


def test_json_nested_too_deeply_is_invalid_json():
    """Deep nesting within the default cap (a RecursionError in the parser) is not JSON."""
    body = b"[" * 30_000 + b"]" * 30_000
    assert score_response(200, body, 1, native, 65536).reason == "invalid_json"


def test_the_status_comes_before_the_body():
    """A 500 with a valid-looking body is still an http_status failure."""
    assert score_status(500, b'{"pred": 1}').reason == "http_status"
    assert score_status(200, b"") is None


def test_exchange_failures_without_an_answer():
    """Timeouts and connection failures have no status and no excerpt unless given."""
    for reason in ("timeout", "connect_error", "connection_closed", "host_not_allowed"):
        assert failure(reason) == records.Score("failed", reason, None, -1, None, None)
    assert failure("too_large", 200, b"abc").body_excerpt == "abc"


def test_every_reason_is_declared_and_unknown_ones_are_refused():
    """The fixed set has a description for each reason; anything else is a bug."""
    assert set(scoring.REASONS) >= {
        "timeout",
        "connect_error",
        "http_status",
        "invalid_json",
        "invalid_pred",
        "too_large",
        "redirect",
        "host_not_allowed",
        "connection_closed",
    }
    assert all(isinstance(text, str) and text for text in scoring.REASONS.values())
    with pytest.raises(ValueError, match="unknown failure reason"):
        failure("teapot")


def test_excerpt_is_bounded_and_safe():
    """The excerpt is the first bytes with undecodable ones replaced."""
    assert scoring.excerpt(b"a" * 10_000) == "a" * scoring.EXCERPT_BYTES
    assert scoring.excerpt(b"ok\xff") == "ok\ufffd"
    assert scoring.excerpt(None) is None
