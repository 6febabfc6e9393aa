"""Progress of a run over many teams: "[3/30] team-red (Red): ..., about 2 min left".

`users create` and `users delete` take seconds per team (a user, a home, a database role,
the game's command), so 30 teams is minutes: each team's line says how far the run is, and
once one team is done, an estimate of the time left from the mean time per team so far.
"""

import time
from collections.abc import Callable
from typing import Any


class Progress:
    """Counts the teams of a run and estimates the time left."""

    def __init__(
        self,
        total: int,
        echo: Callable[[str], Any],
        clock: Callable[[], float] = time.monotonic,
    ):
        """A run over `total` teams, printing with `echo`."""
        self.total, self.echo, self.clock = total, echo, clock
        self.done = 0
        self.started = clock()

    def next(self, what: str) -> None:
        """Say that the next team begins: its place, `what`, and the time left."""
        line = f"[{self.done + 1}/{self.total}] {what}"
        line += still_to_go(self.clock() - self.started, self.done, self.total)
        self.done += 1
        self.echo(line)


def still_to_go(elapsed: float, done: int, total: int) -> str:
    """ ", about 2 min left" from the mean time per team so far; "" before the first or after
    the last."""
    if not done or done >= total:
        return ""
    return f", {left(elapsed / done * (total - done))} left"


def left(seconds: float) -> str:
    """A rough duration: "about 40 s", "about 3 min"."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    return f"about {round(seconds / 60)} min"
