"""A whole game beside a team that tries to poison the customer's client (issue 21, 1 and 5).

The poisoning team's API answers in turn with a valid answer followed by the head of a
second one (the attack that stopped every round on the customer before), endless trailers,
endless chunk extensions, answers nobody asked for, 1xx heads, half a head and a drip.
The honest teams beside it must be scored every round, the poisoner must get its failures,
and the rounds in flight must stay bounded (before the fix they piled up to the limit and
nothing more was sent to anyone).
"""

import asyncio

import pytest
import sqlalchemy as sa
from engine_helpers import fast_game, play
from poison_apis import (
    STALE_HEAD,
    cycle,
    drip,
    endless_extension,
    endless_trailer,
    informational,
    script,
    stale_head,
    unsolicited,
)
from team_apis import TeamAPIs, json_answer

from game_server.play import loop as game
from game_server.play import teams
from game_server.storage import control, database, schema
from game_server.web.app import create_app


@pytest.fixture
def apis():
    """A place to start team APIs; closed after the test."""
    servers = TeamAPIs()
    yield servers
    servers.close()


def poisoner():
    """Every attack in turn, one per request."""
    return cycle(
        stale_head(),
        endless_trailer(),
        stale_head(),
        endless_extension(),
        unsolicited(),
        informational(100, 103),
        script(STALE_HEAD[:20], close=True),  # half a head, then the close
        drip(STALE_HEAD, 0.05),  # slower than the time limit allows
    )


def test_a_poisoning_team_never_stops_or_slows_the_others(db_url, apis):
    engine = database.make_engine(db_url)
    game_file = fast_game(timeout=1.0)  # room for a loaded machine: no honest timeout
    database.prepare_game(engine, game_file)
    teams.add_team(engine, "good", apis.start(json_answer({"pred": 1})).url)
    teams.add_team(engine, "poison", apis.start(poisoner()).url)
    teams.add_team(engine, "also-good", apis.start(json_answer({"pred": 0})).url)
    control.apply(engine, "start", "tester")
    the_game = game.Game(engine, game_file)
    in_flight = []

    async def during(t):
        in_flight.append(the_game.in_flight)

    asyncio.run(play(the_game, engine, during=during))

    with engine.connect() as conn:
        statuses = conn.execute(sa.select(schema.requests.c.status)).scalars().all()
    n = len(statuses)
    assert n + the_game.skipped == 60 and n >= 40, (n, the_game.skipped)
    assert set(statuses) == {"scored"}  # every round ended (before: stuck as `sent`)
    # 20 rounds/s, each over within 1.25 s (limit and backstop) plus its write: never a
    # pile (before the fix, nearly every round stayed in flight to the end)
    assert the_game.in_flight == 0, the_game.in_flight
    assert max(in_flight) <= 40, in_flight

    board = create_app({"DATABASE_URL": db_url}).test_client().get("/api/leaderboard")
    by_name = {t["name"]: t for t in board.get_json()["teams"]}
    for honest in ("good", "also-good"):  # an answer every round, scored right or wrong
        assert by_name[honest]["failures"] == {}, by_name[honest]
        assert by_name[honest]["correct"] + by_name[honest]["wrong"] == n
    poison = by_name["poison"]
    assert poison["correct"] + poison["wrong"] + sum(poison["failures"].values()) == n
    assert {"too_large", "timeout"} <= poison["failures"].keys(), poison
