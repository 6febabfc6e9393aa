"""The recent window: each team's last results in memory, and the snapshot rows they give.

The leaderboard shows, per team, latency p50/p95 (nearest rank) over the answers that say
how fast the API is (`records.counts_latency`), and whether it is up (one of its last
`UP_WINDOW` answers was valid). The loop writes the rows of the teams with new results
to `team_recent` about once a second. Its rows tell valid from failed, never correct from
wrong: an accuracy over the last rounds would tell their labels before their time, so the
leaderboard's accuracy comes from the rounds whose label is visible (`storage.reveal`).
"""

from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from game_server.common.records import FAILED, ScoredRound, percentile

RECENT_WINDOW = 100  # results per team in the recent window
UP_WINDOW = 5  # a team is up when one of its last 5 answers was valid


@dataclass(frozen=True, slots=True)
class Seen:
    """What the window keeps of one result."""

    outcome: str
    latency_ms: float | None  # None when it says nothing of the API's speed


def _round1(value: float | None) -> float | None:
    """`value` to 0.1 (milliseconds are shown to 0.1 ms), None stays None."""
    return None if value is None else round(value, 1)


class RecentWindows:
    """The last `size` results of every team (bounded), and which teams have new ones."""

    def __init__(self, size: int = RECENT_WINDOW):
        """Empty windows of `size` results."""
        self._windows: defaultdict[int, deque[Seen]] = defaultdict(lambda: deque(maxlen=size))
        self._dirty: set[int] = set()

    def remember(self, rnd: ScoredRound) -> None:
        """Add a round's results to their teams' windows (a handler of `Game.results`)."""
        for r in rnd.results:
            latency = r.latency_ms if r.score.counts_latency else None
            self._windows[r.team_id].append(Seen(r.score.outcome, latency))
            self._dirty.add(r.team_id)

    def row(self, team_id: int, now: float) -> dict[str, Any]:
        """The recent-window snapshot of one team (a `team_recent` row)."""
        window = self._windows[team_id]
        outcomes = [s.outcome for s in window]
        answered = sum(o != FAILED for o in outcomes)
        latencies = sorted(s.latency_ms for s in window if s.latency_ms is not None)
        last = outcomes[-UP_WINDOW:]
        return {
            "team_id": team_id,
            "window": len(window),
            "answered": answered,
            "latency_p50": _round1(percentile(latencies, 0.5)),
            "latency_p95": _round1(percentile(latencies, 0.95)),
            "up": any(o != FAILED for o in last) if last else None,
            "updated_at": now,
        }

    def changed_rows(self, now: float) -> list[dict[str, Any]]:
        """The snapshot rows of the teams with new results since the last call."""
        rows = [self.row(t, now) for t in sorted(self._dirty)]
        self._dirty.clear()
        return rows
