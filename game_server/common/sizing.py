"""How big a server the workshop needs: cores and memory for N teams at a starter level.

Two benchmarks measure it (docs/PERFORMANCE.md):

- `make bench-rehearsal` (MEASURED): a whole day of bot teams on one machine, the peak
  included: one team's memory with everyone retraining at once, and its average share of
  the cores at the peak (the game's and PostgreSQL's work counted in);
- `make bench-capacity` (BURST): how many starter APIs the peak's bursts leave answering
  in time on this machine. A burst puts 20 requests on every team at the same instant, so
  the peak needs more cores than its average: the rehearsal's few teams cannot show it.

A team costs the larger of the two core figures. A plan counts on 80 % of the cores and of
the memory. Both levels run the same code once the exercises are filled in, so they cost
the same unless the bench measured them apart. docs/INSTRUCTOR.md's table is `table()`.
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


@dataclass(frozen=True)
class Burst:
    """The peak's bursts: `apis` starter APIs answered in time on `cores` cores."""

    apis: int
    cores: int

    @property
    def cores_per_team(self) -> float:
        """The cores one team's API needs through the peak's bursts."""
        return self.cores / self.apis


# Written by `make bench-rehearsal` (the run cited in docs/PERFORMANCE.md, "Rehearsal").
MEASURED = {
    "complete": Cost(cores=0.057, mb=579, base_mb=860),
    "exercises": Cost(cores=0.095, mb=584, base_mb=969),
}
# Written by `make bench-capacity` (docs/PERFORMANCE.md, "Capacity").
BURST = Burst(apis=22, cores=2)
TEAMS = (10, 20, 30, 50)


class Need(NamedTuple):
    """What a server needs: cores, and memory in GB."""

    cores: int
    gigabytes: int


def needed(teams: int, level: str = "complete", cost: Cost | None = None) -> Need:
    """(cores, memory in GB) a server needs for `teams` teams at `level` (or at `cost`)."""
    cost = cost or MEASURED.get(level, MEASURED["complete"])
    per_team = max(cost.cores, BURST.cores_per_team)
    cores = math.ceil(teams * per_team / USABLE)
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


def table() -> str:
    """docs/INSTRUCTOR.md's sizing table (Markdown), from MEASURED and BURST."""
    levels = list(MEASURED)
    rows = [
        "| teams | " + " | ".join(f"{lv}: cores, memory" for lv in levels) + " | |",
        "|---|" + "---|" * len(levels) + "---|",
    ]
    for n in TEAMS:
        cells = [needed(n, lv) for lv in levels]
        how = (
            f"measured range: {BURST.cores} cores held {BURST.apis} teams' peak, with no margin"
            if n <= BURST.apis
            else "extrapolated from the measured cost per team"
        )
        rows.append(
            f"| {n} | " + " | ".join(f"{c} cores, {g} GB" for c, g in cells) + f" | {how} |"
        )
    return "\n".join(rows) + "\n"
