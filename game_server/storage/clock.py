"""The phase clock: how long the current phase has run, and how much of the game is left.

The `games` row keeps the clock in two columns: `phase_elapsed`, the time the phase ran up
to `phase_resumed_at`, and `phase_resumed_at`, when the clock last started (None while it
is stopped: in the lobby, paused, finished, or after a clean stop of the loop). This
module is the one place that arithmetic is written: the game loop, the control actions,
the lease and the leaderboard all go through it. Pure: it never reads the time itself.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class ClockColumns(Protocol):
    """The `games` row's two clock columns (`games.GameRow` has them)."""

    @property
    def phase_elapsed(self) -> float: ...
    @property
    def phase_resumed_at(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class PhaseClock:
    """The phase clock as the `games` row stores it."""

    elapsed: float  # seconds run in the phase up to `resumed_at`
    resumed_at: float | None = None  # when the clock last started; None while stopped

    @classmethod
    def of(cls, game: ClockColumns) -> "PhaseClock":
        """The clock of a `games` row."""
        return cls(game.phase_elapsed, game.phase_resumed_at)

    def at(self, now: float) -> float:
        """Seconds the phase has run at `now`."""
        if self.resumed_at is None:
            return self.elapsed
        # Never negative: another machine's clock may be a little behind ours.
        return self.elapsed + max(0.0, now - self.resumed_at)

    def stop(self, now: float) -> "PhaseClock":
        """Pause, finish or a clean stop: the running stretch folded in, the clock stopped."""
        return PhaseClock(self.at(now), None)

    def run(self, now: float) -> "PhaseClock":
        """Resume, or a checkpoint of a running clock: folded in, running from `now`."""
        return PhaseClock(self.at(now), now)

    def restart(self, now: float) -> "PhaseClock":
        """After a crash: running from `now` on the time folded in at the last checkpoint.

        The stretch since that checkpoint is dropped: the loop may have been dead for all
        of it, and a game that did not run must not lose phase time.
        """
        return PhaseClock(self.elapsed, now)

    def left(self, duration: float, now: float) -> float:
        """Seconds left of a phase of `duration` at `now` (never negative)."""
        return max(0.0, duration - self.at(now))

    def columns(self) -> dict[str, float | None]:
        """The clock as the `games` row's column values."""
        return {"phase_elapsed": self.elapsed, "phase_resumed_at": self.resumed_at}


def new_phase(now: float | None) -> PhaseClock:
    """A phase's clock at its start: running from `now`, or stopped (None) while paused."""
    return PhaseClock(0.0, now)


def game_left(phase_left: float, later_durations: Iterable[float]) -> float:
    """Seconds left of the game: what is left of this phase plus the phases after it."""
    return phase_left + sum(later_durations)
