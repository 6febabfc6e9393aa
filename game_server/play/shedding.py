"""Overload sheds whole rounds, fairly: the loop's admission of rounds and its skip counts.

Past its ceiling a shard used to fall off a cliff (docs/PERFORMANCE.md, Shards): every
round due was started whatever was in flight, so bursts it could not send within the
time limit queued up, timed out and dropped their connections, and the next burst
reconnected first. Now a round is admitted only while the requests being asked (rounds
between their admission and their last answer, times their teams) stay under a limit,
and the limit follows what the loop gets done in time, like TCP's congestion window: it
starts at `START_LIMIT`, grows by a round per round answered in time until the first
congestion (slow start), then by a tenth of a round (additive increase), and only while
it is in use; a round whose median answer took more than `CONGESTED` of the time limit
says the loop is late sending or reading, and the limit is halved (from what was being
asked), at most once per `CUT_SECONDS`.
A round is admitted or skipped whole, for every team of the shard alike, before its
request row is written; rounds waiting for the database once asked do not count (a slow
writer is not an overload). The median, not the mean: a few slow teams time out anyway.

Skipped rounds are counted by reason (`SKIP_REASONS`), shown on the board's reference
(`storage.shards.record_skips`) and in the metrics.
"""

import statistics
import time
from collections.abc import Sequence

from game_server.common.records import Result

OVERLOAD = "overload"  # the loop could not send more in time
DATABASE_DOWN = "database down"  # the request row could not be written
DATABASE_SLOW = "database slow"  # too many rounds waiting to be stored
SKIP_REASONS = (OVERLOAD, DATABASE_DOWN, DATABASE_SLOW)

START_LIMIT = 4_000  # requests being asked at once, to begin with
FLOOR = 1_000  # the limit never goes below this (50 teams at a burst of 20 are never shed)
CEILING = 100_000
CONGESTED = 0.5  # a round whose median latency is over this share of the time limit
CUT = 0.5  # the limit's multiplicative decrease
GROWTH = 0.1  # after slow start, the limit grows by this share of a round per round in time
IN_USE = 0.5  # the limit grows only while at least this share of it is being asked
CUT_SECONDS = 1.0  # at most one cut per this long (a late burst is one signal, not twenty)


class Admission:
    """How many requests may be asked at once; which rounds are admitted."""

    def __init__(self, timeout: float, limit: float = START_LIMIT, floor: float = FLOOR):
        """`timeout`: the game's time limit per round (seconds)."""
        self.timeout = timeout
        self.limit = float(limit)
        self.floor = float(floor)
        self.asking = 0  # requests of the admitted rounds not yet answered
        self.slow_start = True  # until the first congestion
        self._cut_at = 0.0

    def admit(self, requests: int) -> bool:
        """Admit a round of `requests` requests (one per team) if there is room.

        With nothing being asked a round is always admitted: the game never stops.
        """
        if self.asking and self.asking + requests > self.limit:
            return False
        self.asking += requests
        return True

    def done(self, requests: int, results: Sequence[Result] = ()) -> None:
        """A round admitted with `requests` requests was answered (or failed before)."""
        in_use = self.asking + requests >= IN_USE * self.limit
        self.asking -= requests
        if not results:
            return
        median = statistics.median(r.latency_ms for r in results) / 1000
        if median > CONGESTED * self.timeout:
            now = time.monotonic()
            if now - self._cut_at >= CUT_SECONDS:
                self._cut_at, self.slow_start = now, False
                in_flight = self.asking + requests
                self.limit = max(self.floor, min(self.limit, in_flight) * CUT)
        elif in_use:
            step = requests if self.slow_start else GROWTH * requests
            self.limit = min(CEILING, self.limit + step)


class Skips:
    """Rounds skipped, by reason, and when the last of each was skipped (wall time)."""

    def __init__(self) -> None:
        """None yet."""
        self.counts = dict.fromkeys(SKIP_REASONS, 0)
        self.last_at: dict[str, float] = {}

    def add(self, reason: str, rounds: int = 1) -> None:
        """Count `rounds` skipped for `reason`."""
        self.counts[reason] += rounds
        self.last_at[reason] = time.time()

    @property
    def total(self) -> int:
        """Every round skipped, for whatever reason."""
        return sum(self.counts.values())
