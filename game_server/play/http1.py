"""The customer's HTTP/1.1 exchanges: one kept-alive connection, one POST, a capped answer.

Why not aiohttp here: a profile of the customer's sustained run (docs/PERFORMANCE.md,
Customer) put three quarters of the event loop's time in aiohttp's per-request machinery
(request and response objects, header multidicts, the connector's bookkeeping), which kept
the customer at a third of what Locust sends. A round's POST has one shape: a body built
once per round, sent to a URL known in advance, an answer read with a cap. This module
does only that, on asyncio protocols with llhttp (`httptools`, the parser uvicorn uses),
so an exchange costs a write, a parse and a future. The lobby's health probes stay on
aiohttp (rare, and a GET).

Here: a URL parsed once (`Endpoint`), the request's bytes, and the connection
(`Connection`): a body larger than the cap is never read whole (the connection is
closed), the head is capped too, and redirects are never followed (a 3xx is an answer like
any other). Every way an exchange can end without an answer is an `ExchangeError` whose
`reason` is a scoring reason (GAME.md §2). The connections' pool, its limits and a round's
time limit are in `play/pool.py`.
"""

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httptools

MAX_HEAD_BYTES = 64 * 1024  # status line and headers; more is not an HTTP answer we read


class Owner(Protocol):
    """What a connection needs of its pool (`pool.Pool`)."""

    loop: asyncio.AbstractEventLoop
    cap: int  # the body cap (bytes)

    def release(self, conn: "Connection") -> None:
        """The exchange ended cleanly: keep the connection for the next one."""

    def forget(self, conn: "Connection") -> None:
        """The connection closed."""


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
    """One kept-alive connection to a team: one exchange at a time, parsed by llhttp.

    An exchange ends exactly once: with an `Answer`, or an `ExchangeError` (a parse error,
    a cap, the close, or the round's deadline through `expire`). The connection goes back
    to the pool only when the answer ended exactly where its bytes did: anything after it
    (the head of a second answer, garbage) or any byte while no request waits makes it
    unusable, so one exchange's bytes can never be read as another's.
    """

    def __init__(self, pool: Owner, key: tuple[str, str, int]):
        """A connection of `pool` for endpoint `key`; open once the transport is made."""
        self.pool, self.key = pool, key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = False
        self.poisoned = False  # bytes nobody asked for arrived: never reused
        self.idle_since = 0.0
        self.status: int | None = None
        self._reset()

    def _reset(self) -> None:
        """Forget the previous answer."""
        self._reset_head()
        self.received = 0  # every byte of this exchange: heads, body, framing, trailers
        self.answered = False  # the exchange has its answer (the waiter has its result)
        self.reading = False  # an exchange waits for its answer: a waiter, not answered
        self.keep_alive = False

    def _reset_head(self) -> None:
        """Forget a head (the previous answer's, or an informational 1xx one)."""
        self.status = None
        self.location: str | None = None
        self.length: int | None = None
        self.chunked = False
        self.informational = False
        self.headers_done = False
        self.chunks: list[bytes] = []
        self.size = 0

    def send(self, data: bytes) -> "asyncio.Future[Answer]":
        """Write one request; the future gets the answer (or an ExchangeError)."""
        assert self.transport is not None and self.waiter is None
        self._reset()
        waiter = self.waiter = self.pool.loop.create_future()
        self.reading = True
        if self.closed:  # the team closed it between its making and this request
            self._fail("connection_closed", "closed before the request was sent")
        else:
            self.transport.write(data)
        return waiter

    def expire(self, answer: "asyncio.Future[Answer]") -> None:
        """The time limit of `answer` passed: it ends as a timeout if it has not ended."""
        if answer.done():
            return
        if self.waiter is answer:
            self._fail("timeout", "no complete answer within the time limit")
            return
        # an exchange this connection let go of without ending it: end it, drop the connection
        answer.set_exception(ExchangeError("timeout", None, "the exchange was lost"))
        self.abort()

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
        """Feed the parser within the caps; then hand the connection back, or drop it."""
        if not self.reading:  # bytes no request asked for: the connection is unusable
            self.poisoned = True
            self.abort()
            return
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail("invalid_http", str(exc))
        if self.reading:
            self._check_caps()
        if self.answered:
            self._settle()

    def _check_caps(self) -> None:
        """The head alone within MAX_HEAD_BYTES; everything within that and the body cap."""
        if not self.headers_done:
            if self.received > MAX_HEAD_BYTES:
                self._fail("invalid_http", f"head larger than {MAX_HEAD_BYTES} bytes")
        elif self.received > MAX_HEAD_BYTES + self.pool.cap:  # framing, extensions, trailers
            self._answer(too_large=True)

    def _settle(self) -> None:
        """The answer is handed over: keep the connection only if it ended cleanly."""
        self.waiter = None
        if self.poisoned or self.closed or not self.keep_alive:
            self.abort()
        else:
            self.pool.release(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """Closed: an answer still awaited ends here (to EOF, or cut short)."""
        self.closed = True
        self.pool.forget(self)
        if not self.reading:
            self.waiter = None
            return
        if self.headers_done and self.length is None and not self.chunked:
            self._answer(too_large=False)  # a body that runs to the end of the connection
            self.waiter = None
        else:
            self._fail("connection_closed", "closed before the answer was complete")

    # --- httptools callbacks ---

    def on_message_begin(self) -> None:
        """A message starts: after this exchange's answer, it is one nobody asked for."""
        if not self.reading:
            self.poisoned = True

    def on_header(self, name: bytes, value: bytes) -> None:
        """Keep the headers the customer reads: Location, Content-Length, chunked."""
        if not self.reading or self.headers_done:  # a trailer, or a stray message's
            return
        lower = name.lower()
        if lower == b"location":
            self.location = value.decode("latin-1")
        elif lower == b"content-length" and value.strip().isdigit():
            self.length = int(value)
        elif lower == b"transfer-encoding" and b"chunked" in value.lower():
            self.chunked = True

    def on_headers_complete(self) -> None:
        """The head is in: the status is known; an informational 1xx is skipped."""
        if not self.reading:
            return
        self.headers_done = True
        self.status = self.parser.get_status_code()
        if self.status == 101:  # nothing was asked to switch protocols
            self._fail("invalid_http", "101 Switching Protocols answers no request of ours")
        elif 100 <= self.status < 200:
            self.informational = True  # RFC 9110 §15.2: the final answer follows
        elif self.length is not None and self.length > self.pool.cap:
            self._answer(too_large=True)  # declared too large: not one byte more is read

    def on_body(self, body: bytes) -> None:
        """Collect the body up to the cap; one byte past it ends the exchange."""
        if not self.reading:
            return
        self.chunks.append(body)
        self.size += len(body)
        if self.size > self.pool.cap:
            self._answer(too_large=True)

    def on_message_complete(self) -> None:
        """The whole answer is in (or an informational one: the next head is awaited)."""
        if not self.reading:
            return
        if self.informational:
            self._reset_head()
            return
        self.keep_alive = self.parser.should_keep_alive()  # only valid inside the callback
        self._answer(too_large=False)

    # --- ending an exchange ---

    def _answer(self, too_large: bool) -> None:
        """Hand the answer over (the caller settles the connection)."""
        waiter = self.waiter
        if waiter is None or self.answered:
            return
        if self.status is None:  # cannot happen once headers are done; never hang on it
            self._fail("invalid_http", "an answer without a status")
            return
        self.answered, self.reading = True, False
        if too_large:
            self.keep_alive = False  # the rest of the body is not read
        body = b"".join(self.chunks)[: self.pool.cap + 1]
        if not waiter.done():
            waiter.set_result(Answer(self.status, body, self.location, too_large))

    def _fail(self, reason: str, detail: str) -> None:
        """End the exchange without an answer and drop the connection."""
        waiter, self.waiter = self.waiter, None
        self.reading = False
        if waiter is not None and not waiter.done() and not self.answered:
            waiter.set_exception(ExchangeError(reason, self.status, detail))
        self.abort()
