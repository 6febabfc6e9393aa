"""Generated malformed answers against the customer's client: nothing a team's bytes do
can keep an exchange past its time limit, end it twice, or reach another team's result.

Raw asyncio servers on 127.0.0.1 (`team_apis`) play a poisoning team beside two honest
ones; Hypothesis draws what the poisoner writes for each request: informational heads,
answers framed by length or in chunks (extensions, trailers), heads and bodies cut short,
stray bytes after the answer, answers nobody asked for, endless trailers and chunk
extensions, drips and pauses. Several rounds go through one customer, so a poisoned
kept-alive connection gets its chance to spoil the next exchange.
"""

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from poison_apis import (
    ANSWER,
    STALE_HEAD,
    endless_extension,
    endless_trailer,
    script,
    unsolicited,
)
from team_apis import Handler, Request, TeamAPIs, json_answer

from game_server.play.customer import Customer, Target
from game_server.play.eventloop import loop_factory
from game_server.play.scoring import REASONS

# A process stall on a loaded machine (the suite's workers share the cores) held both
# honest answers past 0.3 s once: the limit leaves room for that, the drips scale with it.
TIMEOUT = 0.8
ROUNDS = 3
# The time limit, its backstop (a quarter second) and room for a loaded machine: a bound
# that only an exchange that never ends can cross.
LIMIT = TIMEOUT + 2.5
FEATURES = {"age": 31}

pytestmark = pytest.mark.slow


class Switchable:
    """One poisoning API whose answers each example sets (servers are started once)."""

    def __init__(self) -> None:
        """No answers yet."""
        self.answers: list[Handler] = []
        self.count = 0

    async def __call__(self, req: Request, writer: asyncio.StreamWriter) -> None:
        """The next drawn answer, in turn."""
        self.count += 1
        await self.answers[(self.count - 1) % len(self.answers)](req, writer)


@pytest.fixture(scope="module")
def servers():
    """Two honest APIs and the poisoner, on their own loop, for every example."""
    apis = TeamAPIs()
    poison = Switchable()
    honest = [apis.start(json_answer({"pred": 1})) for _ in range(2)]
    yield honest, poison, apis.start(poison)
    apis.close()


def chunked(body: bytes, cuts: list[int], extension: bytes, trailers: bytes) -> bytes:
    """`body` in chunks split at `cuts`, each size line with `extension`, then `trailers`."""
    marks = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
    parts = [body[a:b] for a, b in zip(marks, marks[1:], strict=False) if b > a]
    framed = b"".join(b"%x%s\r\n%s\r\n" % (len(p), extension, p) for p in parts)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\n" + trailers


@st.composite
def answer_bytes(draw) -> bytes:
    """One answer's bytes: 1xx heads, a final answer framed some way, then stray bytes."""
    heads = b"".join(
        f"HTTP/1.1 {code} Info\r\n\r\n".encode()
        for code in draw(st.lists(st.sampled_from([100, 101, 102, 103, 199]), max_size=3))
    )
    body = draw(st.sampled_from([b'{"pred": 1}', b'{"pred": 0}', b"", b"x" * 3000]))
    final = draw(
        st.one_of(
            st.just(ANSWER),
            st.just(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)),
            st.builds(
                chunked,
                st.just(body),
                st.lists(st.integers(0, 4000), max_size=4),
                st.sampled_from([b"", b";a=b", b";" + b"e" * 70_000]),
                st.sampled_from([b"\r\n", b"X-T: 1\r\n\r\n", b"X-T: " + b"t" * 200_000]),
            ),
            st.binary(max_size=80),
        )
    )
    stray = draw(
        st.sampled_from([b"", b"\r\n", STALE_HEAD, ANSWER, b"HTTP/1.1 100 Go\r\n\r\n", b"junk"])
    )
    data = heads + final + stray
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    return data if cut is None else data[:cut]


@st.composite
def answers(draw) -> Handler:
    """How the poisoner writes one answer: at once, in pieces with pauses, then maybe closes."""
    kind = draw(st.sampled_from(["bytes", "bytes", "bytes", "trailer", "extension", "extra"]))
    if kind == "trailer":
        return endless_trailer()
    if kind == "extension":
        return endless_extension()
    if kind == "extra":
        return unsolicited(draw(st.sampled_from([0.0, 0.01, 0.05])))
    data = draw(answer_bytes())
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    pause = draw(st.sampled_from([0.0, 0.01, 0.25]))  # 0.25 x 4 pieces: a drip past the limit
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    parts: list[bytes | float] = [x for p in pieces for x in (p, pause)][:-1]
    return script(*parts, close=draw(st.booleans()))


def run(coro):
    """Run on the game's event loop (uvloop when installed)."""
    with asyncio.Runner(loop_factory=loop_factory()[1]) as runner:
        return runner.run(coro)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=st.lists(answers(), min_size=1, max_size=ROUNDS))
def test_every_exchange_ends_once_in_time_and_only_for_its_team(servers, drawn):
    honest, poison, poisoner = servers
    poison.answers, poison.count = drawn, 0
    targets = [Target(1, honest[0].url), Target(2, poisoner.url), Target(3, honest[1].url)]

    async def rounds():
        async with Customer(timeout=TIMEOUT) as customer:
            out = []
            for i in range(ROUNDS):
                async with asyncio.timeout(LIMIT):  # a round that never ends fails here
                    out.append(await customer.ask(targets, f"p-{i}", FEATURES, 1))
            return out

    for results in run(rounds()):
        assert [r.team_id for r in results] == [1, 2, 3]  # one result each, in order
        for r in (results[0], results[2]):
            assert (r.score.outcome, r.score.status_code) == ("correct", 200)
        score = results[1].score
        assert score.outcome in ("correct", "wrong", "failed")
        assert score.reason is None or score.reason in REASONS
