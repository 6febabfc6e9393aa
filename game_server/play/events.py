"""Events of the game loop: the loop fires, its consumers subscribe.

The loop says once what happened (a round's results are in: `Game.results`, an
`Event[ScoredRound]`), and each consumer (the recent window, the database writer, the
metrics) subscribed to it at start-up does its part; the loop does not call them one by
one. Handlers run in the order they subscribed; a handler may be a coroutine function,
and is then awaited before the next runs (the writer's store keeps its backpressure).

A handler's error never stops the others: it is logged as one line once per handler and
distinct error (again every `REPEAT_SECONDS` while it goes on, with how often it
happened), like the loop's supervised tasks (`supervise`), and `fire` returns False so
the loop can void a round not wholly handled.
"""

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from game_server.play.supervise import error_text

log = logging.getLogger(__name__)

REPEAT_SECONDS = 60.0  # the same error of a handler is logged again after this long

T = TypeVar("T")
Handler = Callable[[T], Awaitable[None] | None]


@dataclass(slots=True)
class _Failing:
    """The last error a handler logged, when, and how often it happened since."""

    text: str
    logged_at: float
    since: int = 0


class Event(Generic[T]):
    """One kind of thing that happens in the loop, and the handlers subscribed to it."""

    def __init__(self, name: str):
        """An event called `name` (in its log lines), with no handler yet."""
        self.name = name
        self._handlers: list[Handler[T]] = []
        self._failing: dict[int, _Failing] = {}  # by handler index

    def subscribe(self, *handlers: Handler[T]) -> None:
        """Call each `handler(value)` (awaited when it returns an awaitable) at every `fire`,
        after the handlers subscribed before."""
        self._handlers.extend(handlers)

    async def fire(self, value: T) -> bool:
        """Hand `value` to every handler in turn; False when one of them raised."""
        ok = True
        for index, handler in enumerate(self._handlers):
            try:
                pending = handler(value)
                if pending is not None:
                    await pending
            except Exception as exc:  # one consumer's fault: the others still get it
                ok = False
                self._failed(index, handler, exc)
        return ok

    def _failed(self, index: int, handler: Handler[T], exc: Exception) -> None:
        """Log a handler's error: once per distinct error, then now and then while it lasts."""
        text, now = error_text(exc), time.monotonic()
        last = self._failing.get(index)
        if last is not None and last.text == text and now - last.logged_at < REPEAT_SECONDS:
            last.since += 1
            return
        repeated = last.since if last is not None and last.text == text else 0
        self._failing[index] = _Failing(text, now)
        name = getattr(handler, "__qualname__", repr(handler))
        log.error(
            "event handler failed event=%s handler=%s error=%s repeated=%d",
            self.name,
            name,
            text,
            repeated,
        )
