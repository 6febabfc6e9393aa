"""The round schedule: which rounds are due by a phase time, and each round's seq.

Pure arithmetic on the game file, so every shard of a game (`storage.shards`) computes the
same schedule from the same phase clock and nobody waits for anybody: the k-th round of
phase p has seq `offset(p) + k + 1`, where `offset(p)` is the sum of the earlier phases'
planned rounds (rate x duration). The applicant is drawn from (phase, seq), so every shard
sends the same applicant under the same request id at the same moment. A phase cut short
by the instructor leaves its unused seqs as a gap; nothing needs the seqs contiguous.
"""

from collections.abc import Sequence
from typing import NamedTuple

from game_server.scenario.gamefile import Phase


def planned_rounds(phase: Phase) -> int:
    """How many rounds the phase sends in all (`game check` announces the same)."""
    return round(phase.rate * phase.duration)


def rounds_due(phase: Phase, elapsed: float) -> int:
    """Rounds that have started by phase time `elapsed`: whole bursts, the first at 0.

    At most rate x duration in all, so every phase sends what `game check` announces.
    """
    bursts = int(elapsed * phase.rate / phase.burst) + 1
    return min(planned_rounds(phase), bursts * phase.burst)


class Span(NamedTuple):
    """The seqs of one phase's rounds, both included."""

    first: int
    last: int


class SeqPlan:
    """The seqs of every phase's rounds: a pure function of (phase, round index)."""

    def __init__(self, phases: Sequence[Phase]):
        """The offsets of the phases (the first seq of a game is 1)."""
        self.offsets: list[int] = []
        total = 0
        for phase in phases:
            self.offsets.append(total)
            total += planned_rounds(phase)
        self.sizes = [planned_rounds(p) for p in phases]

    def seq(self, phase_index: int, k: int) -> int:
        """The seq of round `k` (0-based) of phase `phase_index`."""
        if not 0 <= k < self.sizes[phase_index]:
            raise IndexError(f"phase {phase_index} has no round {k}")
        return self.offsets[phase_index] + k + 1

    def span(self, phase_index: int) -> "Span":
        """The first and last seq of a phase."""
        first = self.offsets[phase_index] + 1
        return Span(first, first + self.sizes[phase_index] - 1)
