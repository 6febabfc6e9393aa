"""How fast the scenario draws applicants: sequential draws, as the customer makes them.

Run: .venv/bin/python bench/bench_scenario.py   (numbers go into docs/PERFORMANCE.md)
"""

import time

from game_server.scenario.gamefile import builtin_game_path, load_game_file
from game_server.scenario.stream import Scenario


def main() -> None:
    """Time 20,000 sequential draws per phase of the workshop game."""
    scenario = Scenario(load_game_file(builtin_game_path("workshop")))
    n = 20_000
    for phase_index, phase in enumerate(scenario.game.phases):
        start = time.perf_counter()
        for seq in range(n):
            scenario.draw(phase_index, seq)
        per_draw = (time.perf_counter() - start) / n
        print(f"{phase.name:<20} {per_draw * 1e6:6.1f} µs per draw  ({1 / per_draw:,.0f} draws/s)")
    start = time.perf_counter()
    for _ in range(n):
        scenario.draw(2, 12_345)
    cached = (time.perf_counter() - start) / n
    print(f"{'cached draw':<20} {cached * 1e6:6.1f} µs per draw")


if __name__ == "__main__":
    main()
