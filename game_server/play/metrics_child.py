"""The process that serves the game loop's metrics (`game-server run --metrics-port`).

The counters live in the loop's process, but serving them there made the loop pay for
every scrape: 8 scrapers took it from 8 % to 67 % of a core (waitress parsing, sockets,
the GIL). So the loop's process only renders the text, at most once every CACHE_SECONDS,
when this child asks for it over a socket pair; everything a scraper costs (connections,
HTTP, idle or slow clients) is spent here, at a lower CPU priority. The child serves the
listening socket the loop's process bound (a busy port fails there, before the game) and
ends when the loop's process does (its stdin, a pipe from the parent, closes).

    python -m game_server.play.metrics_child LISTEN_FD LINK_FD
"""

import logging
import os
import socket
import struct
import sys
import threading
import time
from typing import Any

import waitress
from prometheus_client import CONTENT_TYPE_LATEST

from game_server.common import connections
from game_server.common.logs import configure_logging

log = logging.getLogger("game_server.play.metrics")

CACHE_SECONDS = 5.0  # the loop renders the text at most this often (metrics.py), and a scrape
# within this long of the last rendering gets the same text
CONNECTION_LIMIT = 64  # connections held at once; at the limit the stalest idle one goes
NICE = 10  # the loop's process comes first
LENGTH = struct.Struct("!I")  # the rendered text's length, before the text


class Link:
    """This child's end of the socket pair: ask the loop's process for the text."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.lock = threading.Lock()
        self.text = b""
        self.asked_at = -CACHE_SECONDS

    def text_now(self) -> bytes:
        """The metrics' text, asked of the loop's process at most once every CACHE_SECONDS."""
        with self.lock:
            if time.monotonic() - self.asked_at >= CACHE_SECONDS:
                self.sock.sendall(b"?")
                (size,) = LENGTH.unpack(self._read(LENGTH.size))
                self.text = self._read(size)
                self.asked_at = time.monotonic()
            return self.text

    def _read(self, size: int) -> bytes:
        """Exactly `size` bytes; the loop's process gone: exit."""
        data = bytearray()
        while len(data) < size:
            chunk = self.sock.recv(min(size - len(data), 1 << 20))
            if not chunk:
                os._exit(0)  # the loop's process has ended: so does its metrics server
            data += chunk
        return bytes(data)


def wsgi_app(link: Link) -> Any:
    """GET /metrics, and a one-line 404 for anything else."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics" or environ.get("REQUEST_METHOD") != "GET":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: the game's metrics are at GET /metrics\n"]
        body = link.text_now()
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [body]

    return app


def serve(listen_fd: int, link_fd: int) -> None:
    """Serve the metrics on the inherited socket until the parent ends."""
    listener = socket.socket(fileno=listen_fd)
    link = Link(socket.socket(fileno=link_fd))
    server = waitress.create_server(
        wsgi_app(link),
        sockets=[listener],
        threads=1,
        connection_limit=CONNECTION_LIMIT,
        channel_timeout=30,
        cleanup_interval=5,
        asyncore_use_poll=True,
        ident="game-metrics",
    )
    connections.make_room(server)  # idle or slow scrapers cannot lock the port
    threading.Thread(target=_end_with_stdin, name="stdin", daemon=True).start()
    server.run()


def _end_with_stdin() -> None:
    """The parent closed our stdin (it ended, however): end too."""
    sys.stdin.buffer.read()
    os._exit(0)


if __name__ == "__main__":
    configure_logging("WARNING")
    os.nice(NICE)
    serve(int(sys.argv[1]), int(sys.argv[2]))
