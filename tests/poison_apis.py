"""Team APIs that try to poison the customer's HTTP client: the bytes of issue 21.

Each is a `team_apis.Handler` for `TeamAPIs.start`: a valid answer followed by the head of
a second one, answers nobody asked for, informational 1xx heads, heads cut in half, endless
trailers and chunk extensions, answers dripped a byte at a time. Endless writers stop by
themselves (a byte budget) when the customer does not close the connection first.
"""

import asyncio

from team_apis import Handler, Request, response

ANSWER = response(200, b'{"pred": 1}')
STALE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"  # the head of an answer, no body
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
ENDLESS_BUDGET = 8 * 1024 * 1024  # an endless writer's bytes, at most


def script(*parts: bytes | float, close: bool = False) -> Handler:
    """An API that writes `parts` in order (a float is a pause in seconds), then maybe closes."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        for part in parts:
            if isinstance(part, float):
                await writer.drain()
                await asyncio.sleep(part)
            else:
                writer.write(part)
        if close:
            await writer.drain()
            writer.close()

    return handle


def endless(head: bytes, piece: bytes) -> Handler:
    """An API that writes `head`, then `piece` again and again (until closed or the budget)."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(head)
        sent = len(head)
        while sent < ENDLESS_BUDGET and not writer.is_closing():
            writer.write(piece)
            sent += len(piece)
            await writer.drain()
        writer.close()

    return handle


def endless_trailer() -> Handler:
    """A chunked answer whose last chunk is followed by trailer fields without end."""
    return endless(CHUNKED_HEAD + b'b\r\n{"pred": 1}\r\n0\r\n', b"X-T: " + b"t" * 4090 + b"\r\n")


def endless_extension() -> Handler:
    """A chunked answer whose first chunk size line is an extension without end."""
    return endless(CHUNKED_HEAD + b"b;ext=", b"e" * 4096)


def unsolicited(after: float = 0.01) -> Handler:
    """A valid answer, then (while no request waits) another answer nobody asked for."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(ANSWER)
        asyncio.get_running_loop().call_later(after, writer.write, ANSWER)

    return handle


def drip(data: bytes, pause: float) -> Handler:
    """`data` one byte at a time, `pause` seconds apart."""
    return script(*[p for b in data for p in (bytes([b]), pause)])


def stale_head() -> Handler:
    """The reproduced attack: a valid answer and, in the same write, the head of another."""
    return script(ANSWER + STALE_HEAD)


def informational(*codes: int) -> Handler:
    """Informational heads (1xx) before the answer."""
    return script(*(f"HTTP/1.1 {c} Info\r\n\r\n".encode() for c in codes), ANSWER)


def cycle(*handlers: Handler) -> Handler:
    """Each request answered by the next handler in turn (every attack, over and over)."""
    count = 0

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        count += 1
        await handlers[(count - 1) % len(handlers)](req, writer)

    return handle
