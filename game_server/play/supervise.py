"""The game loop's long-running tasks, supervised: a failure is a pause, never the end.

GAME.md §9: the game bends and never breaks. Each of the loop's tasks (poll, schedule,
snapshots, reveal, probe, ...) runs through `supervised`: when it raises (a database that
went away, a bug in one task), the failure is logged once per distinct error, one line,
and the task is started again after a backoff that grows while it keeps failing. Only a
stop (the task cancelled, or the task returning by itself) ends it, so one task's
failure can no longer end the game loop (issue 22).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

log = logging.getLogger(__name__)

BACKOFF = (0.5, 1.0, 2.0, 5.0)  # seconds before each restart while a task keeps failing
HEALTHY_SECONDS = 30.0  # a task that ran this long before failing starts its backoff over


def error_text(exc: BaseException) -> str:
    """`Type: first line of the message`, the one line a failure is logged as."""
    first = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


async def supervised(
    name: str,
    body: Callable[[], Awaitable[object]],
    backoff: Sequence[float] = BACKOFF,
    healthy_seconds: float = HEALTHY_SECONDS,
) -> None:
    """Run `body()` until it returns or is cancelled; restart it after every failure.

    A failure is logged when its error differs from the last one logged (a database down
    for a minute is one line, not sixty); after `healthy_seconds` of running well the
    backoff starts over and the same error is logged again.
    """
    failures = 0
    last: str | None = None
    while True:
        started = time.monotonic()
        try:
            await body()
            return
        except Exception as exc:  # anything but a stop: the game goes on
            if time.monotonic() - started >= healthy_seconds:
                failures, last = 0, None  # it ran fine for a while: a new episode
            text = error_text(exc)
            pause = backoff[min(failures, len(backoff) - 1)]
            if text != last:
                log.error(
                    "game loop task failed task=%s error=%s; restarting it in %gs",
                    name,
                    text,
                    pause,
                )
                last = text
            failures += 1
        await asyncio.sleep(pause)
