"""Connections the game's waitress servers cannot be locked by: idle and slow clients.

waitress reads requests in one thread and hands only complete ones to its worker threads,
so an idle or slowly-sending connection costs a socket, not a worker. But at its
`connection_limit` it stops accepting: 110 idle connections from anyone on the server
kept the web pages from answering, 9 the metrics port. So `make_room` changes what the
limit does: a new client is still accepted, and the connection that has gone longest
without a request (an idle keep-alive, a slowloris that never finishes its head) is
closed to make room. A flood of connections only churns itself; a client that asks gets
its answer. Connections serving a request are never closed. Idle ones go after
`channel_timeout` anyway.
"""

import logging
import time
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer

log = logging.getLogger(__name__)

LOG_EVERY = 10.0  # s: one line for the connections closed in that time, however many
OVERFLOW = "total open connections"  # waitress' lines at the limit, one per connection


class _AtTheLimit(logging.Filter):
    """Drops waitress' line at each crossing of the limit: with room made, a flood would
    cross it at every new connection (a line each); `_readable` logs once per LOG_EVERY."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(OVERFLOW)


_listener_log = logging.getLogger(f"{__name__}.waitress")  # the listeners' other lines stay
_listener_log.addFilter(_AtTheLimit())


class Channel(HTTPChannel):
    """A waitress connection that remembers when it last completed a request."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.asked_at = self.creation_time

    def received(self, data: bytes) -> bool:
        """Parse as waitress does; a completed request makes this connection fresh."""
        more = super().received(data)
        if self.requests:
            self.asked_at = time.time()
        return more


def make_room(server: Any) -> Any:
    """Make every listener of a waitress server (`create_server`'s) close its stalest idle
    connection when full, rather than stop accepting; the server itself."""
    listeners = [server] if isinstance(server, BaseWSGIServer) else server.map.values()
    for listener in listeners:
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = Channel
            listener.readable = _readable(listener)
            listener.logger = _listener_log
    return server


def _readable(listener: BaseWSGIServer) -> Any:
    """The listener's `readable` (asked by waitress' loop before each poll), marking one
    stale connection to close while the connections are at the limit."""
    ask = listener.readable
    closed = {"count": 0, "logged_at": time.monotonic()}

    def readable() -> bool:
        if listener.accepting and len(listener._map) >= listener.adj.connection_limit:
            closed["count"] += close_stalest(listener, listener.adj.connection_limit)
        now = time.monotonic()
        if closed["count"] and now - closed["logged_at"] >= LOG_EVERY:
            log.warning(
                "connections at the limit=%d: closed %d idle or slow ones port=%s",
                listener.adj.connection_limit,
                closed["count"],
                listener.effective_port,
            )
            closed["count"], closed["logged_at"] = 0, now
        return bool(ask())

    return readable


def close_stalest(listener: Any, limit: int) -> int:
    """Mark the connection longest without a request (and serving none) to close; 1, or 0
    when none is idle or enough are closing already.

    Marked, not closed here: waitress closes it in its own turn of the loop. Closed in the
    middle of a poll, its file descriptor could go to the next accepted connection while
    the poll's stale event for it is still to be handled, closing the newcomer instead.
    """
    channels = list(listener.active_channels.values())
    closing = sum(1 for c in channels if c.will_close)
    if len(listener._map) - closing < limit:
        return 0
    idle = [c for c in channels if not c.requests and not c.will_close]
    if not idle:
        return 0
    min(idle, key=lambda c: getattr(c, "asked_at", c.creation_time)).will_close = True
    return 1
