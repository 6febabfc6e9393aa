"""The customer's connections to the teams: kept alive per team, limited, and timed per round.

`Pool` keeps each team's connections (`http1.Connection`) alive and drops one idle longer
than `keepalive` seconds (before the team's server closes it); at most `per_host` are open
to one team at once (more requests wait for one) and `total` in all; a name is connected to
only at the addresses the allow-list resolver hands out. `Deadline` is a round's time
limit: one timer that ends every exchange of the round still unanswered.
"""

import asyncio
import collections
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any, Protocol

from game_server.play.hosts import HostNotAllowed
from game_server.play.http1 import Answer, Connection, Endpoint, ExchangeError


class Resolver(Protocol):
    """What the pool needs of a resolver: the allowed addresses of a name (aiohttp's shape)."""

    async def resolve(self, host: str, port: int, family: socket.AddressFamily) -> list[Any]:
        """Dicts with at least "host" (an address); HostNotAllowed when none is allowed."""
        ...


class Deadline:
    """The time limit of a round's exchanges: one timer that ends every unanswered one.

    One timer per round, not one per request: at a hundred teams a timer each was a
    sixth of the customer's time (the profile in docs/PERFORMANCE.md).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float):
        """Starts now; `cancel()` it once the round is over."""
        self.when = loop.time() + seconds
        self.passed = False
        self._exchanges: list[tuple[Connection, asyncio.Future[Answer]]] = []
        self._timer = loop.call_at(self.when, self._expire)

    def watch(self, conn: Connection, answer: "asyncio.Future[Answer]") -> "asyncio.Future[Answer]":
        """`answer`, the round's exchange on `conn`, ends by the deadline."""
        self._exchanges.append((conn, answer))
        return answer

    def cancel(self) -> None:
        """The round is over: no timer needed."""
        self._timer.cancel()
        self._exchanges.clear()

    def _expire(self) -> None:
        """The time limit: every exchange still waiting is a timeout; its connection is dropped.

        The exchange's own future is ended, not only the connection's current one: an
        exchange can never outlive its deadline, whatever state its connection is in (an
        exchange already ended, or a later round's on the same connection, is left alone).
        """
        self.passed = True
        for conn, answer in self._exchanges:
            conn.expire(answer)
        self._exchanges.clear()


class Pool:
    """Kept-alive connections per endpoint, with the per-team and total limits."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        cap: int,
        per_host: int,
        total: int,
        keepalive: float,
        ssl_context: ssl.SSLContext | None = None,
    ):
        """Limits only; connections open on demand inside the running loop."""
        self.loop = asyncio.get_running_loop()
        self.resolver, self.cap = resolver, cap
        self.per_host, self.total, self.keepalive = per_host, total, keepalive
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self._open: collections.Counter[tuple[str, str, int]] = collections.Counter()
        self._open_total = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._all: set[Connection] = set()

    async def post(self, ep: Endpoint, data: bytes, deadline: "Deadline") -> Answer:
        """One exchange with `ep`, ended by `deadline`; ExchangeError without an answer.

        On a kept-alive connection this is a write and a wait; opening a connection (or
        waiting for one) is the slow path, under its own timeout.
        """
        conn = self._take_idle(ep.key)
        if conn is None:
            try:
                async with asyncio.timeout_at(deadline.when):
                    conn = await self._acquire(ep)
            except TimeoutError:
                raise ExchangeError("timeout") from None
        if deadline.passed:  # the time limit ended while the connection was being made
            self.release(conn)
            raise ExchangeError("timeout")
        try:
            return await deadline.watch(conn, conn.send(data))
        except BaseException:
            conn.abort()
            raise

    def _take_idle(self, key: tuple[str, str, int]) -> Connection | None:
        """The most recently used idle connection, dropping those idle too long."""
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            if now - idle[0].idle_since > self.keepalive:  # the oldest first: it may be stale
                idle.pop(0).abort()
                continue
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def _acquire(self, ep: Endpoint) -> Connection:
        """A new connection when the limits allow one, else the next one released."""
        while True:
            conn = self._take_idle(ep.key)
            if conn is not None:
                return conn
            if self._open[ep.key] < self.per_host and self._open_total < self.total:
                return await self._connect(ep)
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done():
                    waiter.cancel()

    async def _connect(self, ep: Endpoint) -> Connection:
        """Open a connection to an allowed address of the endpoint (counted while open)."""
        self._open[ep.key] += 1
        self._open_total += 1
        try:
            for address in await self._addresses(ep):
                try:
                    _, conn = await self.loop.create_connection(
                        self._factory(ep.key),
                        address,
                        ep.port,
                        ssl=self._ssl_context() if ep.tls else None,
                        server_hostname=ep.host if ep.tls else None,
                    )
                    return conn
                except OSError as exc:
                    error: OSError = exc
            raise ExchangeError("connect_error", None, str(error))
        except BaseException:
            self._closed_one(ep.key)
            raise

    def _factory(self, key: tuple[str, str, int]) -> Callable[[], Connection]:
        """Make a counted connection for `key`."""

        def make() -> Connection:
            conn = Connection(self, key)
            self._all.add(conn)
            return conn

        return make

    def _ssl_context(self) -> ssl.SSLContext:
        """The TLS settings (certificates verified), made once."""
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def _addresses(self, ep: Endpoint) -> list[str]:
        """Where to connect: the IP itself, or the resolver's allowed addresses."""
        if ep.is_ip:
            return [ep.host]
        try:
            found = await self.resolver.resolve(ep.host, ep.port, socket.AF_UNSPEC)
        except HostNotAllowed as exc:
            raise ExchangeError("host_not_allowed", None, str(exc)) from None
        except OSError as exc:
            raise ExchangeError("connect_error", None, str(exc)) from None
        return [r["host"] for r in found] or [ep.host]

    def release(self, conn: Connection) -> None:
        """An exchange ended cleanly: the connection waits for the next request."""
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.key, []).append(conn)
        self._wake()

    def forget(self, conn: Connection) -> None:
        """A connection closed: it no longer counts."""
        if conn in self._all:
            self._all.discard(conn)
            idle = self._idle.get(conn.key)
            if idle and conn in idle:
                idle.remove(conn)
            self._closed_one(conn.key)

    def _closed_one(self, key: tuple[str, str, int]) -> None:
        """One connection fewer for `key`; a waiting request may open one."""
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]
        self._open_total -= 1
        self._wake()

    def _wake(self) -> None:
        """Let the waiting requests look again (for an idle connection or a free slot)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def close(self) -> None:
        """Drop every connection."""
        for conn in list(self._all):
            conn.abort()
        self._idle.clear()
