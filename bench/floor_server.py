"""The leaderboard benchmark's floor: the game's web server answering a fixed JSON document.

The same waitress server as `game-server web --workers N` (`webserver.serve_app`: the
same threads, body cap and socket options; `webserver.supervise_workers`: the same worker processes
on one socket), serving a bare WSGI app that answers every request with one fixed JSON
document of `--bytes` bytes. Whatever the real endpoint costs beyond this is the game's
own work. Bench-only: no route of the game serves this.

    .venv/bin/python bench/floor_server.py --bytes 20000 --workers 2

Prints its URL on stdout; serves until SIGTERM or SIGINT (which stop every worker).
`serve_floor` and `serve_game` start it and `game-server web --workers N` for the
leaderboard's benchmark; `run_wrk` loads either, `medians` sums up the runs.
"""

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from game_server.common import supervisor
from game_server.processes import webserver


@contextlib.contextmanager
def started(
    command: list[str], env: dict[str, str], log: Path, find_url: Callable[[str], str | None]
) -> Iterator[str]:
    """A server process (`command`) whose URL `find_url(log text)` reads from its output;
    stopped with SIGTERM (its workers with it) when the block ends."""
    with open(log, "w") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while (url := find_url(log.read_text())) is None:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log.read_text()[-500:]}")
            time.sleep(0.1)
        yield url.rstrip("/")
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def serve_game(url: str, workers: int, tmp: str) -> contextlib.AbstractContextManager[str]:
    """`game-server web --workers N` on a free port, as `game-server run` serves the pages
    (its database URL in the environment); its base URL."""
    env = {**os.environ, "GAME_DATABASE_URL": url, "GAME_LOG_LEVEL": "INFO"}  # for the URL

    def find(text: str) -> str | None:
        found = re.search(r"web app listening url=(\S+)", text)
        return found.group(1) if found else None

    command = [sys.executable, "-m", "game_server", "web", "--port", "0"]
    return started(command + ["--workers", str(workers)], env, Path(tmp) / "web.log", find)


def serve_floor(size: int, workers: int, tmp: str) -> contextlib.AbstractContextManager[str]:
    """The floor (`floor_server.py`): the same server, a fixed JSON document of `size` bytes."""
    script = str(Path(__file__).resolve())
    command = [sys.executable, script, "--bytes", str(size), "--workers", str(workers)]

    def find(text: str) -> str | None:
        found = re.search(r"^(http://\S+)$", text, re.M)
        return found.group(1) if found else None

    return started(command, dict(os.environ), Path(tmp) / f"floor-{size}.log", find)


def document(size: int) -> bytes:
    """A JSON object of exactly `size` bytes (at least 12)."""
    body = json.dumps({"pad": ""}).encode()
    return json.dumps({"pad": "x" * (size - len(body))}).encode()


def fixed_app(body: bytes) -> WSGIApplication:
    """A WSGI app that answers every request with `body` as JSON."""
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]

    def app(_environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", headers)
        return [body]

    return app


def run_wrk(url: str, seconds: int) -> dict:
    """wrk with 50 connections for `seconds`: p50, p99 (ms) and requests/s."""
    out = subprocess.run(
        ["wrk", "-t2", "-c50", f"-d{seconds}s", "--latency", "--timeout", "5s", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout

    def found(pattern: str) -> re.Match[str]:
        match = re.search(pattern, out)
        if match is None:
            raise RuntimeError(f"wrk's output has no {pattern!r}: {out}")
        return match

    def millis(label: str) -> float:
        value, unit = found(rf"{label}\s+([\d.]+)(us|ms|s)").groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "p50": millis("50%"),
        "p99": millis("99%"),
        "rps": float(found(r"Requests/sec:\s+([\d.]+)").group(1)),
        "errors": int(errors.group(1)) if errors else 0,
    }


def medians(results: list[dict]) -> dict:
    """The median p50, p99 and requests/s of wrk runs, their p99s, the errors in all."""
    return {
        "p50": statistics.median(r["p50"] for r in results),
        "p99": statistics.median(r["p99"] for r in results),
        "p99s": [r["p99"] for r in results],
        "rps": statistics.median(r["rps"] for r in results),
        "errors": sum(r["errors"] for r in results),
    }


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
        webserver.supervise_workers(work, args.workers, supervisor.HUNG_SECONDS)
    print(f"floor server stopped pid={os.getpid()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
