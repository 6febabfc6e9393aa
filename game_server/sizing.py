"""How big a server the workshop needs: cores and memory for N teams at a starter level.

The cost of one team is what `make bench-rehearsal` measured (docs/PERFORMANCE.md,
"Rehearsal"; the table in docs/INSTRUCTOR.md, "How big a server"): a whole day of bot
teams on one machine, the peak included, each team's share of the game's own work and of
PostgreSQL's counted in. A plan counts on 80 % of the cores and of the memory. Both
levels run the same code once the exercises are filled in, so they cost the same unless
the bench measured them apart.
"""

import math
from dataclasses import dataclass
from typing import NamedTuple

USABLE = 0.8


@dataclass(frozen=True)
class Cost:
    """One team's cost at the peak (cores, MB), and the machine's base (MB: OS, game, DB)."""

    cores: float
    mb: float
    base_mb: float = 1024.0


# Written by `make bench-rehearsal` (the run cited in docs/PERFORMANCE.md, "Rehearsal").
MEASURED = {
    "complete": Cost(cores=0.30, mb=700.0),
    "exercises": Cost(cores=0.30, mb=700.0),
}
TEAMS = (10, 20, 30, 50)


class Need(NamedTuple):
    """What a server needs: cores, and memory in GB."""

    cores: int
    gigabytes: int


def needed(teams: int, level: str = "complete", cost: Cost | None = None) -> Need:
    """(cores, memory in GB) a server needs for `teams` teams at `level` (or at `cost`)."""
    cost = cost or MEASURED.get(level, MEASURED["complete"])
    cores = math.ceil(teams * cost.cores / USABLE)
    gigabytes = math.ceil((cost.base_mb + teams * cost.mb) / USABLE / 1024)
    return Need(max(cores, 2), gigabytes)


def too_small(teams: int, cores: int, memory_gb: float, level: str = "complete") -> str | None:
    """One line when a server of `cores` and `memory_gb` is smaller than `teams` need."""
    want_cores, want_gb = needed(teams, level)
    if cores >= want_cores and memory_gb >= want_gb:
        return None
    return (
        f"for {teams} teams the sizing table (docs/INSTRUCTOR.md) says {want_cores} cores and "
        f"{want_gb} GB; this server has {cores} cores and {memory_gb:.0f} GB: rent a bigger "
        f"one, split the room (shards), or check with `game-server rehearse --teams {teams}`"
    )
