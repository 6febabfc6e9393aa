"""The customer's HTTP/1.1 client for rounds: keep-alive POSTs, answers read with a cap.

Why not aiohttp here: a profile of the customer's sustained run (docs/PERFORMANCE.md,
Customer) put three quarters of the event loop's time in aiohttp's per-request machinery
(request and response objects, header multidicts, the connector's bookkeeping), which kept
the customer at a third of what Locust sends. A round's POST has one shape: a body built
once per round, sent to a URL known in advance, an answer read with a cap. This module
does only that, on asyncio protocols with llhttp (`httptools`, the parser uvicorn uses),
so an exchange costs a write, a parse and a future. The lobby's health probes stay on
aiohttp (rare, and a GET).

The customer's rules hold here: connections to each team are kept alive and dropped after
`keepalive` seconds idle; at most `per_host` at once to one team (more wait for one) and
`total` in all; a body larger than the cap is never read whole (the connection is closed);
the head is capped too; redirects are never followed (a 3xx is an answer like any other);
a name is connected to only at the addresses the allow-list resolver hands out. Every way
an exchange can end without an answer is an `ExchangeError` whose `reason` is a scoring
reason (GAME.md §2).
"""

import asyncio
import collections
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httptools

from game_server.play.hosts import HostNotAllowed

MAX_HEAD_BYTES = 64 * 1024  # status line and headers; more is not an HTTP answer we read


class Resolver(Protocol):
    """What the pool needs of a resolver: the allowed addresses of a name (aiohttp's shape)."""

    async def resolve(self, host: str, port: int, family: socket.AddressFamily) -> list[Any]:
        """Dicts with at least "host" (an address); HostNotAllowed when none is allowed."""
        ...


class ExchangeError(Exception):
    """An exchange that ended without an answer; `reason` is the scoring reason."""

    def __init__(self, reason: str, status: int | None = None, detail: str = ""):
        """`status` when the head had arrived (a timeout while reading the body)."""
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back: the status, the body (at most cap + 1 bytes), Location, too large."""

    status: int
    body: bytes
    location: str | None
    too_large: bool  # the body is (or is declared) larger than the cap; not read whole


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A URL parsed once: where to connect and the head of every request to it."""

    key: tuple[str, str, int]  # (scheme, host, port): one pool of connections each
    host: str
    port: int
    tls: bool
    is_ip: bool
    head: bytes  # request line and Host header

    @classmethod
    def parse(cls, url: str) -> "Endpoint":
        """The endpoint of an http(s) URL; ValueError for anything else."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        host = parts.hostname
        try:
            ipaddress.ip_address(host)
            is_ip = True
        except ValueError:
            is_ip = False
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        netloc = parts.netloc.rsplit("@", 1)[-1]
        head = f"POST {target} HTTP/1.1\r\nHost: {netloc}\r\n".encode("ascii")
        return cls((parts.scheme, host, port), host, port, tls, is_ip, head)


def request_tail(headers: dict[str, str], body: bytes) -> bytes:
    """The rest of a request after `Endpoint.head`: headers, length and body (once a round)."""
    if any("\r" in k + v or "\n" in k + v for k, v in headers.items()):
        raise ValueError("a header holds a line break")
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"{lines}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body


class Connection(asyncio.Protocol):
    """One kept-alive connection to a team: one exchange at a time, parsed by llhttp."""

    def __init__(self, pool: "Pool", key: tuple[str, str, int]):
        """A connection of `pool` for endpoint `key`; open once the transport is made."""
        self.pool, self.key = pool, key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = False
        self.idle_since = 0.0
        self.status: int | None = None
        self._reset()

    def _reset(self) -> None:
        """Forget the previous answer."""
        self.status = None
        self.location: str | None = None
        self.length: int | None = None
        self.chunked = False
        self.head_bytes = 0
        self.headers_done = False
        self.chunks: list[bytes] = []
        self.size = 0

    def send(self, data: bytes) -> "asyncio.Future[Answer]":
        """Write one request; the future gets the answer (or an ExchangeError)."""
        assert self.transport is not None and self.waiter is None
        self._reset()
        self.waiter = self.pool.loop.create_future()
        self.transport.write(data)
        return self.waiter

    def expire(self) -> None:
        """The time limit passed: a pending exchange ends as a timeout."""
        if self.waiter is not None and not self.waiter.done():
            self._fail("timeout", "no complete answer within the time limit")

    def abort(self) -> None:
        """Drop the connection at once (a timeout, or an answer not read to its end)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Feed the parser; bytes nobody asked for make the connection unusable."""
        if self.waiter is None or self.waiter.done():
            self.abort()
            return
        if not self.headers_done:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail("invalid_http", str(exc))
            return
        if not self.headers_done and self.head_bytes > MAX_HEAD_BYTES:
            self._fail("invalid_http", f"head larger than {MAX_HEAD_BYTES} bytes")

    def connection_lost(self, exc: Exception | None) -> None:
        """Closed: an answer still awaited ends here (to EOF, or cut short)."""
        self.closed = True
        self.pool.forget(self)
        if self.waiter is None or self.waiter.done():
            return
        if self.headers_done and self.length is None and not self.chunked:
            self._finish(too_large=False)  # a body that runs to the end of the connection
        else:
            self._fail("connection_closed", "closed before the answer was complete")

    # --- httptools callbacks ---

    def on_header(self, name: bytes, value: bytes) -> None:
        """Keep the headers the customer reads: Location, Content-Length, chunked."""
        lower = name.lower()
        if lower == b"location":
            self.location = value.decode("latin-1")
        elif lower == b"content-length" and value.strip().isdigit():
            self.length = int(value)
        elif lower == b"transfer-encoding" and b"chunked" in value.lower():
            self.chunked = True

    def on_headers_complete(self) -> None:
        """The head is in: the status is known."""
        self.headers_done = True
        self.status = self.parser.get_status_code()
        if self.length is not None and self.length > self.pool.cap:
            self._finish(too_large=True)  # declared too large: not one byte more is read

    def on_body(self, body: bytes) -> None:
        """Collect the body up to the cap; one byte past it ends the exchange."""
        if self.waiter is None or self.waiter.done():
            return
        self.chunks.append(body)
        self.size += len(body)
        if self.size > self.pool.cap:
            self._finish(too_large=True)

    def on_message_complete(self) -> None:
        """The whole answer is in."""
        if self.waiter is not None and not self.waiter.done():
            self._finish(too_large=False)

    # --- ending an exchange ---

    def _finish(self, too_large: bool) -> None:
        """Hand the answer over; keep the connection for the next request if it can be."""
        waiter, self.waiter = self.waiter, None
        body = b"".join(self.chunks)[: self.pool.cap + 1]
        assert self.status is not None
        if waiter is not None and not waiter.done():
            waiter.set_result(Answer(self.status, body, self.location, too_large))
        if too_large or self.closed or not self.parser.should_keep_alive():
            self.abort()
        else:
            self.pool.release(self)

    def _fail(self, reason: str, detail: str) -> None:
        """End the exchange without an answer and drop the connection."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ExchangeError(reason, self.status, detail))
        self.abort()


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
        """The time limit: every exchange still waiting is a timeout; its connection is dropped."""
        self.passed = True
        for conn, answer in self._exchanges:
            if conn.waiter is answer:  # still this round's exchange, not a later round's
                conn.expire()
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
