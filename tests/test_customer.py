"""The customer against real team APIs on 127.0.0.1: every way an answer can fail, scored."""

import asyncio
import json
import logging
import tracemalloc

import pytest
from team_apis import (
    TeamAPIs,
    delayed,
    hang,
    json_answer,
    raw_answer,
    refused_port,
    response,
)

from game_server.common.records import Result
from game_server.play.customer import Customer, Target

TIMEOUT = 0.3
FEATURES = {"age": 31, "income": 4200.5, "region": "north", "owns_home": True, "debt": None}


@pytest.fixture(scope="module")
def apis():
    """The team APIs' servers, on their own loop, for the module."""
    servers = TeamAPIs()
    yield servers
    servers.close()


def ask(targets, label=1, request_id="r-1", **settings) -> list[Result]:
    """One round to `targets`, from a fresh customer with the test settings."""

    async def run():
        async with Customer(**{"timeout": TIMEOUT, **settings}) as customer:
            return await customer.ask(targets, request_id, FEATURES, label)

    return asyncio.run(run())


def ask_one(url, **kwargs) -> Result:
    """The result of one round to a single native team."""
    return ask([Target(7, url)], **kwargs)[0]


def test_correct_and_wrong_answers_score_one_and_zero(apis):
    """pred equal to the label is +1, the other class is 0; the request follows the contract."""
    right, wrong = apis.start(json_answer({"pred": 1})), apis.start(json_answer({"pred": 0}))
    results = ask([Target(1, right.url), Target(2, wrong.url)], label=1, request_id="abc")
    assert [(r.team_id, r.score.outcome, r.score.points, r.score.pred) for r in results] == [
        (1, "correct", 1, 1),
        (2, "wrong", 0, 0),
    ]
    assert all(r.score.reason is None and r.score.status_code == 200 for r in results)
    sent = right.requests[0]
    assert (sent.method, sent.path) == ("POST", "/predict")
    assert sent.headers["x-request-id"] == "abc"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {"id": "abc", "features": FEATURES}


def test_true_false_and_extra_keys_are_accepted(apis):
    """JSON true is 1 and other keys are ignored."""
    api = apis.start(json_answer({"pred": True, "proba": 0.9, "model_version": "v2"}))
    result = ask_one(api.url, label=1)
    assert (result.score.outcome, result.score.pred, result.score.points) == ("correct", 1, 1)


@pytest.mark.parametrize(
    ("handler", "reason", "status", "excerpt"),
    [
        (json_answer({"error": "boom"}, status=500), "http_status", 500, '{"error": "boom"}'),
        (
            raw_answer(response(200, b"<html><body>Hello</body></html>", "text/html")),
            "invalid_json",
            200,
            "<html><body>Hello",
        ),
        (json_answer({"pred": "yes"}), "invalid_pred", 200, '{"pred": "yes"}'),
        (json_answer({"pred": [1]}), "invalid_pred", 200, '{"pred": [1]}'),
        (json_answer({"pred": 2}), "invalid_pred", 200, '{"pred": 2}'),
        (json_answer({"prediction": 1}), "invalid_pred", 200, '{"prediction": 1}'),
        (raw_answer(response(200, b"\xff\xfe{not utf8")), "invalid_json", 200, "\ufffd"),
        (raw_answer(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"), "invalid_http", None, None),
    ],
    ids=["500", "html", "pred-yes", "pred-list", "pred-2", "no-pred", "bad-utf8", "not-http"],
)
def test_invalid_answers_fail_with_reason_status_and_excerpt(
    apis, handler, reason, status, excerpt
):
    """Each kind of bad answer is -1 with its reason, status and the start of the body."""
    result = ask_one(apis.start(handler).url)
    assert (result.score.outcome, result.score.points, result.score.pred) == ("failed", -1, None)
    assert (result.score.reason, result.score.status_code) == (reason, status)
    if excerpt is None:
        assert result.score.body_excerpt is None
    else:
        assert excerpt in result.score.body_excerpt


def test_body_excerpt_is_only_the_first_bytes(apis):
    """A long error page is kept only as its first few hundred bytes."""
    api = apis.start(raw_answer(response(503, b"x" * 50_000, "text/plain")))
    result = ask_one(api.url)
    assert (result.score.reason, result.score.status_code) == ("http_status", 503)
    assert result.score.body_excerpt == "x" * 300


def test_redirect_is_never_followed(apis):
    """A 302 to another host is a failure; the other host is never called."""
    target = apis.start(json_answer({"pred": 1}))
    api = apis.start(raw_answer(response(302, b"", Location=target.url)))
    result = ask_one(api.url)
    assert (result.score.reason, result.score.status_code, result.score.points) == (
        "redirect",
        302,
        -1,
    )
    assert target.url in result.score.body_excerpt
    assert target.requests == []


def test_hanging_and_slow_apis_time_out(apis):
    """No answer, or one later than the limit, is a timeout at about the limit."""
    results = ask(
        [
            Target(1, apis.start(hang()).url),
            Target(2, apis.start(delayed(3 * TIMEOUT, json_answer({"pred": 1}))).url),
        ]
    )
    for result in results:
        assert (result.score.outcome, result.score.reason, result.score.points) == (
            "failed",
            "timeout",
            -1,
        )
        assert TIMEOUT * 1000 * 0.9 <= result.latency_ms < TIMEOUT * 1000 * 3


def test_a_body_that_trickles_past_the_limit_times_out(apis):
    """The time limit covers reading the body, not only the headers."""

    async def trickle(req, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{")
        for _ in range(19):
            await writer.drain()
            await asyncio.sleep(TIMEOUT / 4)
            writer.write(b" ")

    result = ask_one(apis.start(trickle).url)
    assert (result.score.reason, result.score.status_code) == ("timeout", 200)


def test_a_hanging_team_does_not_delay_the_others(apis):
    """The fast team's answer is scored long before the hanging team's timeout."""
    fast, stuck = apis.start(json_answer({"pred": 1})), apis.start(hang())
    results = ask([Target(1, stuck.url), Target(2, fast.url), Target(3, stuck.url)])
    by_team = {r.team_id: r for r in results}
    assert by_team[2].score.outcome == "correct"
    assert by_team[2].latency_ms < TIMEOUT * 1000 / 2
    assert by_team[1].score.reason == by_team[3].score.reason == "timeout"
    assert by_team[1].latency_ms >= TIMEOUT * 1000 * 0.9


def test_a_huge_body_is_too_large_and_never_read_whole(apis):
    """10 MB with or without Content-Length: too_large, and memory stays far below 10 MB."""
    chunk = b"7" * 65536

    async def streamed(req, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(160):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    async def declared(req, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (160 * len(chunk)))
        for _ in range(160):
            writer.write(chunk)
            await writer.drain()

    targets = [Target(1, apis.start(streamed).url), Target(2, apis.start(declared).url)]
    tracemalloc.start()
    try:
        results = ask(targets)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(r.score.reason, r.score.status_code) for r in results] == [("too_large", 200)] * 2
    assert results[0].score.body_excerpt.startswith("7777")
    assert peak < 3 * 1024 * 1024


def test_body_cap_is_a_setting(apis):
    """An answer just over max_body_bytes is too large; at the cap it is fine."""
    body = json.dumps({"pred": 1, "pad": "x" * 100}).encode()
    api = apis.start(raw_answer(response(200, body)))
    assert ask_one(api.url, max_body_bytes=len(body)).score.outcome == "correct"
    assert ask_one(api.url, max_body_bytes=len(body) - 1).score.reason == "too_large"


def test_connection_closed_mid_response(apis):
    """Headers promise 100 bytes, 10 arrive, then the connection closes."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    api = apis.start(raw_answer(head + b'{"pred": 1', close=True))
    result = ask_one(api.url)
    assert (result.score.reason, result.score.status_code, result.score.points) == (
        "connection_closed",
        200,
        -1,
    )


def test_connection_closed_before_any_answer(apis):
    """The API reads the request and closes the connection without a word."""
    result = ask_one(apis.start(raw_answer(b"", close=True)).url)
    assert (result.score.reason, result.score.status_code) == ("connection_closed", None)


def test_refused_port_is_a_connect_error():
    """Nothing listening: connect_error, quickly."""
    result = ask_one(f"http://127.0.0.1:{refused_port()}/predict")
    assert (result.score.outcome, result.score.reason, result.score.points) == (
        "failed",
        "connect_error",
        -1,
    )


def test_connections_are_reused_between_rounds(apis):
    """Several rounds to one team travel over one kept-alive connection."""
    api = apis.start(json_answer({"pred": 1}))

    async def run():
        async with Customer(timeout=TIMEOUT) as customer:
            for i in range(5):
                results = await customer.ask([Target(1, api.url)], f"r{i}", FEATURES, 1)
                assert results[0].score.outcome == "correct"

    asyncio.run(run())
    assert len(api.requests) == 5
    assert api.connections == 1


def test_every_team_gets_the_same_request_at_once(apis):
    """All targets receive the same id and features; results keep the targets' order."""
    team_apis = [apis.start(delayed(0.05, json_answer({"pred": i % 2}))) for i in range(20)]
    targets = [Target(i, api.url) for i, api in enumerate(team_apis)]
    results = ask(targets, label=0, request_id="same")
    assert [r.team_id for r in results] == list(range(20))
    assert [r.score.points for r in results] == [1, 0] * 10
    assert {api.requests[0].body for api in team_apis} == {team_apis[0].requests[0].body}
    # Sent together: 20 answers that each take 50 ms arrive well before 20 x 50 ms.
    assert max(r.latency_ms for r in results) < 20 * 50 / 2


def test_unexpected_errors_are_logged_and_scored_failed(apis, caplog, monkeypatch):
    """A bug while handling one team is one log line and a failure; the others are scored."""
    good = apis.start(json_answer({"pred": 1}))

    async def broken(self, target, *args):
        if target.team_id == 1:
            raise RuntimeError("bug")
        return await original(self, target, *args)

    original = Customer._exchange
    monkeypatch.setattr(Customer, "_exchange", broken)
    with caplog.at_level(logging.INFO, logger="game_server.play.customer"):
        results = ask([Target(1, good.url), Target(2, good.url)], request_id="req-9")
    assert [(r.score.outcome, r.score.reason) for r in results] == [
        ("failed", "internal_error"),
        ("correct", None),
    ]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "team_id=1" in errors[0].getMessage() and "request_id=req-9" in errors[0].getMessage()


def test_one_log_line_per_failure_none_per_success(apis, caplog):
    """Failures are logged with team, request id, reason and status; successes stay quiet."""
    good, bad = apis.start(json_answer({"pred": 1})), apis.start(json_answer({}, status=404))
    with caplog.at_level(logging.INFO, logger="game_server.play.customer"):
        ask([Target(1, good.url), Target(2, bad.url)], request_id="q-5")
    lines = [r.getMessage() for r in caplog.records if r.name == "game_server.play.customer"]
    assert len(lines) == 1
    for part in ("team_id=2", "request_id=q-5", "reason=http_status", "status=404"):
        assert part in lines[0]


def test_unknown_protocol_is_a_failure_not_a_crash(apis):
    """A target the customer can't build a request for fails alone."""
    good = apis.start(json_answer({"pred": 1}))
    results = ask([Target(1, good.url, protocol="grpc"), Target(2, good.url)])
    assert [(r.score.reason, r.score.points) for r in results] == [
        ("internal_error", -1),
        (None, 1),
    ]


def test_host_not_on_the_allow_list_is_never_called(apis):
    """An IP outside the list is refused before sending, with no connection made."""
    api = apis.start(json_answer({"pred": 1}))
    result = ask_one(api.url, allowed_hosts=["10.0.0.0/8"])
    assert (result.score.reason, result.score.points) == ("host_not_allowed", -1)
    assert api.connections == 0


def test_a_name_resolving_outside_the_allow_list_is_refused_at_send_time(apis):
    """`localhost` resolves to loopback: refused when only 127.0.0.2 is allowed."""
    api = apis.start(json_answer({"pred": 1}))
    url = f"http://localhost:{api.port}/predict"
    assert ask_one(url, allowed_hosts=["127.0.0.2"]).score.reason == "host_not_allowed"
    assert api.connections == 0
    # The same name passes when its address is allowed, or when the name itself is listed.
    assert ask_one(url, allowed_hosts=["127.0.0.0/8"]).score.outcome == "correct"
    assert ask_one(url, allowed_hosts=["LocalHost"]).score.outcome == "correct"
