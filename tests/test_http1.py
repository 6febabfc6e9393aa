"""The customer's HTTP/1.1 client (`play.http1`) on what only it decides: framing and time.

The customer's rules as teams meet them are in test_customer.py; these are the client's
own cases: answers framed every way HTTP/1.1 allows, a head too large, `Connection: close`,
a round's deadline that must not end a later round's exchange on the same connection, and
the per-team connection limit; and the poisoning answers of issue 21 one by one (the
generated ones are in test_http1_poison.py).
"""

import asyncio
from types import SimpleNamespace

import pytest
from poison_apis import (
    STALE_HEAD,
    drip,
    endless_extension,
    endless_trailer,
    informational,
    script,
    stale_head,
    unsolicited,
)
from team_apis import TeamAPIs, delayed, hang, json_answer, raw_answer, response

from game_server.play import customer as customer_module
from game_server.play import http1, pool
from game_server.play.customer import Customer, Target
from game_server.play.eventloop import loop_factory

TIMEOUT = 0.3
FEATURES = {"age": 31}


def run(coro):
    """Run on the game's event loop (uvloop when installed)."""
    with asyncio.Runner(loop_factory=loop_factory()[1]) as runner:
        return runner.run(coro)


def ask(targets, **settings):
    """One round to `targets` from a fresh customer."""

    async def go():
        async with Customer(**{"timeout": TIMEOUT, **settings}) as customer:
            return await customer.ask(targets, "h-1", FEATURES, 1)

    return run(go())


def test_answers_framed_by_length_chunks_or_the_end_of_the_connection():
    """Content-Length, chunked, and a body running to the close all score alike."""
    apis = TeamAPIs()
    try:
        chunks = b'4\r\n{"pr\r\n7\r\ned": 1}\r\n0\r\n\r\n'
        chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
        to_close = b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"pred": 1}'
        targets = [
            Target(1, apis.start(json_answer({"pred": 1})).url),
            Target(2, apis.start(raw_answer(chunked)).url),
            Target(3, apis.start(raw_answer(to_close, close=True)).url),
        ]
        results = ask(targets)
        assert [(r.score.outcome, r.score.status_code) for r in results] == [("correct", 200)] * 3
    finally:
        apis.close()


def test_a_head_larger_than_the_cap_is_invalid_http():
    """Endless headers are not read for ever: invalid_http, whatever the body cap."""
    apis = TeamAPIs()
    try:
        head = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * (2 * http1.MAX_HEAD_BYTES) + b"\r\n"
        result = ask([Target(1, apis.start(raw_answer(head)).url)])[0]
        assert (result.score.outcome, result.score.reason) == ("failed", "invalid_http")
    finally:
        apis.close()


def test_connection_close_answers_open_a_new_connection_each_time():
    """An API that says `Connection: close` is answered, and its connections are not reused."""
    apis = TeamAPIs()
    try:
        api = apis.start(raw_answer(response(200, b'{"pred": 1}', Connection="close"), close=True))

        async def go():
            async with Customer(timeout=TIMEOUT) as customer:
                return [
                    (await customer.ask([Target(1, api.url)], f"r{i}", FEATURES, 1))[0]
                    for i in range(3)
                ]

        assert [r.score.outcome for r in run(go())] == ["correct"] * 3
        assert api.connections == 3
    finally:
        apis.close()


def test_a_round_s_deadline_never_ends_a_later_round_on_the_same_connection():
    """Round A waits on a slow team; its deadline passes while round B, on the connection A
    used for a fast team, is still waiting: B's answer still counts."""
    apis = TeamAPIs()
    try:
        fast = apis.start(delayed(0.2, json_answer({"pred": 1})))
        slow = apis.start(delayed(10, json_answer({"pred": 1})))

        async def go():
            async with Customer(timeout=0.3) as customer:
                first = asyncio.create_task(
                    customer.ask([Target(1, fast.url), Target(2, slow.url)], "a", FEATURES, 1)
                )
                await asyncio.sleep(0.22)  # A's fast answer is in: its connection is idle
                second = await customer.ask([Target(1, fast.url)], "b", FEATURES, 1)
                return await first, second

        (a_fast, a_slow), (b_fast,) = run(go())
        assert (a_fast.score.outcome, a_slow.score.reason) == ("correct", "timeout")
        assert b_fast.score.outcome == "correct"  # A's deadline (0.3 s) fell inside B's wait
        assert fast.connections == 1
    finally:
        apis.close()


def test_requests_beyond_the_per_team_limit_wait_for_a_connection():
    """Four requests at once to a team allowed two connections: two connections, four answers."""
    apis = TeamAPIs()
    try:
        api = apis.start(delayed(0.05, json_answer({"pred": 1})))

        async def go():
            async with Customer(timeout=1.0, connections_per_team=2) as customer:
                return await asyncio.gather(
                    *(customer.ask([Target(1, api.url)], f"r{i}", FEATURES, 1) for i in range(4))
                )

        rounds = run(go())
        assert [r[0].score.outcome for r in rounds] == ["correct"] * 4
        assert api.connections == 2
    finally:
        apis.close()


def rounds(api, count=3, pause=0.0):
    """`count` rounds, `pause` seconds apart, to `api` alone through one customer."""

    async def go():
        async with Customer(timeout=TIMEOUT) as customer:
            results = []
            for i in range(count):
                await asyncio.sleep(pause)
                results += await customer.ask([Target(1, api.url)], f"r{i}", FEATURES, 1)
            return results

    return run(go())


@pytest.mark.parametrize("attack", [stale_head, unsolicited])
def test_bytes_after_an_answer_close_the_connection(attack):
    """The answer counts; what follows it (the head of a second answer in the same write,
    an answer nobody asked for while the connection is idle) is never read as the next
    exchange's: its connection is dropped. Before, the stale head ate the next answer and
    that round never ended."""
    apis = TeamAPIs()
    try:
        api = apis.start(attack())
        assert [r.score.outcome for r in rounds(api, pause=0.1)] == ["correct"] * 3
        assert api.connections == 3  # never reused
    finally:
        apis.close()


def test_informational_answers_are_skipped_but_101_is_not_an_answer():
    """1xx heads before the answer are skipped (RFC 9110 §15.2); a 101 answers nothing."""
    apis = TeamAPIs()
    try:
        targets = [
            Target(1, apis.start(informational(100)).url),
            Target(2, apis.start(informational(100, 103, 102)).url),
            Target(3, apis.start(informational(101)).url),
        ]
        results = ask(targets)
        assert [r.score.outcome for r in results[:2]] == ["correct", "correct"]
        assert (results[2].score.outcome, results[2].score.reason) == ("failed", "invalid_http")
    finally:
        apis.close()


def test_framing_without_end_counts_against_the_size_cap():
    """Endless trailers or chunk extensions carry no body byte, yet are too large."""
    apis = TeamAPIs()
    try:
        targets = [Target(1, apis.start(endless_trailer()).url)]
        targets.append(Target(2, apis.start(endless_extension()).url))
        results = ask(targets, max_body_bytes=1024)
        assert [(r.score.outcome, r.score.reason) for r in results] == [("failed", "too_large")] * 2
    finally:
        apis.close()


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (lambda: script(STALE_HEAD[:20], close=True), "connection_closed"),
        (lambda: script(STALE_HEAD[:20]), "timeout"),  # half a head, then nothing
        (lambda: drip(STALE_HEAD + b"0123456789", 0.05), "timeout"),
    ],
)
def test_half_answers_end_by_the_close_or_the_time_limit(handler, reason):
    """An answer cut short or dripped slower than the limit allows ends once, on time."""
    apis = TeamAPIs()
    try:
        result = rounds(apis.start(handler()), count=2)
        assert [(r.score.outcome, r.score.reason) for r in result] == [("failed", reason)] * 2
    finally:
        apis.close()


def test_the_deadline_ends_an_exchange_its_connection_let_go_of():
    """Should a connection ever drop an exchange unanswered (the bug of issue 21), the
    round's deadline still ends it, as a timeout, and the connection is not reused."""

    class Transport:
        def write(self, data):
            pass

        def abort(self):
            self.aborted = True

    async def go():
        loop = asyncio.get_running_loop()
        owner = SimpleNamespace(loop=loop, cap=10, forget=lambda c: None, release=lambda c: None)
        conn = http1.Connection(owner, ("http", "x", 80))
        conn.connection_made(Transport())
        deadline = pool.Deadline(loop, 0.01)
        answer = deadline.watch(conn, conn.send(b"POST"))
        conn.waiter = None  # lost
        with pytest.raises(http1.ExchangeError) as raised:
            await answer
        return raised.value.reason, conn.closed

    assert run(go()) == ("timeout", True)


def test_a_round_ends_by_its_backstop_whatever_an_exchange_does(monkeypatch):
    """An exchange that escaped its deadline (a bug of ours) is a timeout at the backstop;
    the other teams keep their answers."""
    apis = TeamAPIs()
    try:
        good, stuck = apis.start(json_answer({"pred": 1})), apis.start(hang())
        exchange = customer_module.Customer._exchange

        async def never_ends_for_team_2(self, target, *args):
            if target.team_id == 2:
                await asyncio.Event().wait()
            return await exchange(self, target, *args)

        monkeypatch.setattr(customer_module.Customer, "_exchange", never_ends_for_team_2)
        results = ask([Target(1, good.url), Target(2, stuck.url)])
        assert [(r.score.outcome, r.score.reason) for r in results] == [
            ("correct", None),
            ("failed", "timeout"),
        ]
    finally:
        apis.close()
