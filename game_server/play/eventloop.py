"""The game loop's event loop: uvloop where it is installed, asyncio's own otherwise.

uvloop (libuv under asyncio's API) roughly halves the cost of each socket event; the
customer makes one or two per team and round, so at a hundred teams the loop's own work is
a large part of a round (docs/PERFORMANCE.md, Customer). It is a dependency on Linux and
macOS, where the game server runs; elsewhere (it has no Windows build) the game runs on
asyncio's loop, slower but the same game.
"""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, NamedTuple, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class LoopFactory(NamedTuple):
    """An event loop's name and what makes one."""

    name: str
    factory: Callable[[], asyncio.AbstractEventLoop]


def loop_factory() -> LoopFactory:
    """The name and factory of the fastest event loop installed."""
    try:
        import uvloop
    except ImportError:
        return LoopFactory("asyncio", asyncio.new_event_loop)
    return LoopFactory("uvloop", uvloop.new_event_loop)


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the fastest event loop installed."""
    name, factory = loop_factory()
    log.debug("event loop=%s", name)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
