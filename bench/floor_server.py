"""The leaderboard benchmark's floor: the game's web server answering a fixed JSON document.

The same waitress server as `game-server web --workers N` (`webserver.serve_app`: the
same threads, body cap and socket options; `prefork.Workers`: the same worker processes
on one socket), serving a bare WSGI app that answers every request with one fixed JSON
document of `--bytes` bytes. Whatever the real endpoint costs beyond this is the game's
own work. Bench-only: no route of the game serves this.

    .venv/bin/python bench/floor_server.py --bytes 20000 --workers 2

Prints its URL on stdout; serves until SIGTERM or SIGINT (which stop every worker).
"""

import argparse
import json
import os
import sys

from game_server import prefork, webserver


def document(size: int) -> bytes:
    """A JSON object of exactly `size` bytes (at least 12)."""
    body = json.dumps({"pad": ""}).encode()
    return json.dumps({"pad": "x" * (size - len(body))}).encode()


def fixed_app(body: bytes):
    """A WSGI app that answers every request with `body` as JSON."""
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]

    def app(_environ: dict, start_response) -> list[bytes]:
        start_response("200 OK", headers)
        return [body]

    return app


def main() -> int:
    """Listen, print the URL, serve with the workers until stopped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, required=True, help="the document's size")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    args = parser.parse_args()
    if args.bytes < 12:
        parser.error("--bytes must be at least 12")
    body = document(args.bytes)
    sock = webserver.listen("127.0.0.1", 0)
    print(webserver.base_url(sock), flush=True)
    work = lambda: webserver.serve_app(lambda: fixed_app(body), sock)  # noqa: E731
    if args.workers == 1:
        work()
    else:
        prefork.Workers(args.workers, work).run()
    print(f"floor server stopped pid={os.getpid()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
