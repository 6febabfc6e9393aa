"""Fast stub team APIs for the benchmarks: one port per team, in a process of their own.

Each answers every POST with a fixed prediction (a minimal keep-alive HTTP/1.1 server), so
a benchmark measures the game's side, not a model. `stub_teams` starts them as
`python bench/stub_apis.py TEAMS` and stops them by closing its stdin.
"""

import asyncio
import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import cast

STUB_ANSWER = b'{"pred": 1, "proba": 0.73}'


STUB_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    % (len(STUB_ANSWER), STUB_ANSWER)
)


class StubProtocol(asyncio.Protocol):
    """A minimal keep-alive HTTP/1.1 server that answers every POST with a fixed pred."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start with an empty buffer."""
        self.transport, self.buffer = cast(asyncio.Transport, transport), b""  # TCP

    def data_received(self, data: bytes) -> None:
        """Answer every complete request in the buffer (pipelining-safe)."""
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", self.buffer[:end])
            size = end + 4 + (int(match.group(1)) if match else 0)
            if len(self.buffer) < size:
                return
            self.buffer = self.buffer[size:]
            self.transport.write(STUB_RESPONSE)


async def serve_stubs(teams: int) -> None:
    """Listen on `teams` free ports, print them as one JSON line, serve until stdin closes."""
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(StubProtocol, "127.0.0.1", 0) for _ in range(teams)]
    print(json.dumps([s.sockets[0].getsockname()[1] for s in servers]), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # the parent closes stdin to stop us


@contextlib.contextmanager
def stub_teams(teams: int, pids: list[int] | None = None) -> Iterator[list[int]]:
    """`teams` stub team APIs in a process of their own; yields their ports.

    `pids`, when given, gets the stub process's pid (to measure its CPU time).
    """
    stubs = subprocess.Popen(
        [sys.executable, __file__, str(teams)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stubs.stdin is not None and stubs.stdout is not None  # both PIPE
    if pids is not None:
        pids.append(stubs.pid)
    try:
        yield json.loads(stubs.stdout.readline())
    finally:
        stubs.stdin.close()  # the stubs stop when their stdin closes
        try:
            stubs.wait(10)
        except subprocess.TimeoutExpired:
            stubs.kill()


if __name__ == "__main__":
    asyncio.run(serve_stubs(int(sys.argv[1])))
