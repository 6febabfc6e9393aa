"""The customer's HTTP/1.1 client (`play.http1`) on what only it decides: framing and time.

The customer's rules as teams meet them are in test_customer.py; these are the client's
own cases: answers framed every way HTTP/1.1 allows, a head too large, `Connection: close`,
a round's deadline that must not end a later round's exchange on the same connection, and
the per-team connection limit.
"""

import asyncio

from team_apis import TeamAPIs, delayed, json_answer, raw_answer, response

from game_server.play import http1
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
