"""The scenario's contract: the builtin games load, and draws are deterministic and JSON-ready."""

import json

from scenario_helpers import TEST_SECRET

from game_server.scenario.gamefile import builtin_game_path, load_game_file
from game_server.scenario.stream import Scenario


def test_builtin_games_draw_deterministic_json_ready_applicants():
    for name in ("workshop", "demo"):
        game = load_game_file(builtin_game_path(name))
        assert [p.kind for p in game.phases] == ["warmup", "messy", "shift", "peak", "drift"]
        first, second = Scenario(game, TEST_SECRET), Scenario(game, TEST_SECRET)
        for phase in range(len(game.phases)):
            drawn = [first.draw(phase, seq) for seq in range(300)]
            assert drawn == [second.draw(phase, seq) for seq in range(300)]
            json.dumps([a.features for a in drawn], allow_nan=False)
            assert all(0.5 <= first.oracle_expected_points(a) <= 1 for a in drawn)
