"""The records of a round, in one place below play and storage: pure, no I/O.

What the game loop (`play`) hands to the database (`storage`) and storage reads back:
a request as it is stored before it is sent (`RequestRow`), one team's scored answer
(`Score`, `Result`), a round whose every answer is in (`ScoredRound`), the outcomes and
their points, and the latency rule (which answers say how fast an API is, and their
percentiles), so the totals, the recent window, the metrics and the team pages count
latency alike. Both parts import this module; it imports nothing of the game, so the
records flow one way, down (the layers contract in pyproject.toml).

How an exchange becomes a `Score` is play's rule (`play.scoring`).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

CORRECT, WRONG, FAILED = "correct", "wrong", "failed"
OUTCOMES = (CORRECT, WRONG, FAILED)
POINTS = {CORRECT: 1, WRONG: 0, FAILED: -1}


@dataclass(frozen=True, slots=True)
class Score:
    """The scored outcome of one exchange."""

    outcome: str  # correct | wrong | failed
    reason: str | None  # for failed: one of play.scoring.REASONS
    pred: int | None
    points: int  # +1 / 0 / -1
    status_code: int | None = None
    body_excerpt: str | None = None  # first bytes of what came back, for failures

    @property
    def counts_latency(self) -> bool:
        """Whether this exchange's latency says how fast the API is (see `counts_latency`)."""
        return counts_latency(self.status_code, self.reason)


@dataclass(frozen=True, slots=True)
class Result:
    """One team's answer to one request, scored: who, the score, and how long it took."""

    team_id: int
    score: Score
    latency_ms: float


class RequestRow(TypedDict):
    """The columns of one request as the loop stores it before sending (status aside)."""

    seq: int
    request_id: str
    phase_index: int
    features: dict[str, Any]  # exactly the JSON "features" object sent
    oddities: list[str]
    label: int
    p_default: float | None  # None with the instructor's own data
    oracle_points: float | None
    baseline_points: float
    sent_at: float
    label_visible_at: float


@dataclass(frozen=True, slots=True)
class ScoredRound:
    """One round whose every team's result is in: what the loop's result event carries and
    `storage.writes.store_rounds` writes."""

    seq: int
    phase_index: int
    oracle_points: float | None  # the oracle's expected points; None with own data
    baseline_points: float
    results: Sequence[Result]


def counts_latency(status_code: int | None, reason: str | None) -> bool:
    """Whether a result's latency says how fast the API is: it answered, or timed out.

    A refused connection's latency says nothing about the API's speed. The one rule for
    the running mean, the recent window, the metrics and the team page's series.
    """
    return status_code is not None or reason == "timeout"


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) of already sorted values, nearest rank; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]
