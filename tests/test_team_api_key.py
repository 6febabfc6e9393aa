"""Team APIs answer only the game and the team (issue 21 item 7): the customer shows each
team's API a key made from that team's token digest (`registry.api_key`), and the starter
(participant_starter/modules/access.py) makes the same key from the team's TEAM_TOKEN and
refuses `/predict` without it (its own tests: tests/test_access.py, test_connections.py)."""

import asyncio
import importlib.util
from pathlib import Path

import pytest
from engine_helpers import fast_game
from team_apis import TeamAPIs, json_answer

from game_server.play import loop as game
from game_server.play import teams
from game_server.play.customer import Customer, Target
from game_server.storage import database
from game_server.storage import teams as registry

ACCESS = Path(__file__).parents[1] / "participant_starter" / "modules" / "access.py"


@pytest.fixture
def apis():
    """Fake team APIs on loopback, stopped after the test."""
    started = TeamAPIs()
    yield started
    started.close()


def starter_access():
    """The starter's `modules/access.py`, loaded from its file (it is not a package here)."""
    spec = importlib.util.spec_from_file_location("starter_access", ACCESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("token", ["a", "x" * 43, "Zq-_09"])
def test_the_game_and_the_starter_make_the_same_key(token):
    key = registry.api_key(registry.hash_token(token))
    assert key == starter_access().game_key(token)
    assert len(key) == 64 and key != registry.hash_token(token)  # never the stored digest


def test_the_customer_shows_each_team_its_own_key(apis):
    red, blue, bare = (apis.start(json_answer({"pred": 1})) for _ in range(3))
    targets = [
        Target(1, red.url, key="k-red"),
        Target(2, blue.url, key="k-blue"),
        Target(3, bare.url),
    ]

    async def run():
        async with Customer(timeout=2.0) as customer:
            return await customer.ask(targets, "r-1", {"age": 30}, 1)

    results = asyncio.run(run())
    assert [r.score.outcome for r in results] == ["correct"] * 3
    assert red.requests[0].headers["x-game-key"] == "k-red"
    assert blue.requests[0].headers["x-game-key"] == "k-blue"
    assert "x-game-key" not in bare.requests[0].headers


def test_the_game_loop_sends_each_team_the_key_of_its_token(sqlite_url):
    engine = database.make_engine(sqlite_url)
    game_file = fast_game()
    database.prepare_game(engine, game_file)
    tokens = {
        n: teams.add_team(engine, n, f"http://127.0.0.1:{9001 + i}/predict", resolve=False)
        for i, n in enumerate(("red", "blue"))
    }
    the_game = game.Game(engine, game_file)
    the_game._load()
    access = starter_access()
    assert sorted(t.key for t in the_game.targets) == sorted(
        access.game_key(t) for t in tokens.values()
    )
    engine.dispose()
