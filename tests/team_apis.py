"""Real team APIs for the customer's tests: raw HTTP servers on 127.0.0.1, one port each.

Each API is an async function given the parsed request and the stream writer; it may
answer well, badly, slowly or not at all. They run on their own event loop in a thread,
so a hanging team API is as independent of the customer as a real one.
"""

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class Request:
    """One HTTP request as a team API received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        """The body parsed as JSON."""
        return json.loads(self.body)


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


def response(status: int, body: bytes, content_type: str = "application/json", **headers) -> bytes:
    """The bytes of a complete HTTP/1.1 response that keeps the connection open."""
    lines = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type}"]
    lines += [f"Content-Length: {len(body)}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def json_answer(doc: object, status: int = 200) -> Handler:
    """An API that answers every request with `doc` as JSON."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(response(status, json.dumps(doc).encode()))

    return handle


def raw_answer(data: bytes, close: bool = False) -> Handler:
    """An API that writes `data` as is (and closes the connection if `close`)."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        if close:
            await writer.drain()
            writer.close()

    return handle


def delayed(seconds: float, then: Handler) -> Handler:
    """An API that waits `seconds` before answering like `then`."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(seconds)
        await then(req, writer)

    return handle


def hang() -> Handler:
    """An API that reads the request and never answers."""
    return delayed(3600, json_answer({"pred": 1}))


@dataclass
class TeamAPI:
    """One running API: its port, URL and what it has seen."""

    handler: Handler
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    connections: int = 0

    @property
    def url(self) -> str:
        """The URL a team would register for the `native` protocol."""
        return f"http://127.0.0.1:{self.port}/predict"

    @property
    def base_url(self) -> str:
        """The URL without a path, as `mlflow` and `openinference` teams register it."""
        return f"http://127.0.0.1:{self.port}"


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One request from the connection, or None when the client closed it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    first, *lines = head.decode("latin-1").split("\r\n")
    method, path, _ = first.split(" ", 2)
    headers = {}
    for line in lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    return Request(method, path, headers, body)


class TeamAPIs:
    """Starts team APIs on free ports of 127.0.0.1, on an event loop of their own."""

    def __init__(self):
        """Start the servers' loop in a daemon thread."""
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[asyncio.Server] = []

    def start(self, handler: Handler, host: str = "127.0.0.1") -> TeamAPI:
        """A new API on its own free port of `host` (another loopback address: 127.0.0.2)."""
        api = TeamAPI(handler)
        server = asyncio.run_coroutine_threadsafe(self._serve(api, host), self.loop).result(5)
        self.servers.append(server)
        api.port = server.sockets[0].getsockname()[1]
        return api

    async def _serve(self, api: TeamAPI, host: str) -> asyncio.Server:
        """Listen for `api` (keep-alive: many requests per connection)."""

        async def on_connection(reader, writer):
            api.connections += 1
            try:
                while (req := await read_request(reader)) is not None:
                    api.requests.append(req)
                    await api.handler(req, writer)
                    if writer.is_closing():
                        break
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        return await asyncio.start_server(on_connection, host, 0)

    def close(self) -> None:
        """Stop every server and the loop."""

        async def shutdown():
            for server in self.servers:
                server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def refused_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
