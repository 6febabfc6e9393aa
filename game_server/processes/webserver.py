"""Serving the web app with waitress: as the process of `game-server web`, or in a thread.

`game-server run` starts `game-server web` as a child process (`serve.WebProcess`) on a
listening socket it made itself, so the game loop and the pages share nothing but the
database: a flood of page requests spends the web process's CPU and GIL, never the loop's.
`game-server web --workers N` serves from N worker processes on the one socket, forked and
supervised by `supervisor` (the GIL of one process is the ceiling of its p99 under load);
each worker beats from waitress' loop, and one silent for `--worker-timeout` seconds is
killed and replaced. `start_web` serves from a thread instead, for tests.
"""

import functools
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

from game_server.common import connections, supervisor
from game_server.processes import activation
from game_server.web.app import create_app

log = logging.getLogger(__name__)

WEB_THREADS = 8
BACKLOG = 1024  # connections wait here while a new web process starts (waitress's default)
BODY_MAX = 64 * 1024  # the body cap of a WSGI app that is not the game's (the bench floor)
CONNECTION_LIMIT = 500  # per web process; below a default 1,024 open files with room
IDLE_SECONDS = 30  # an idle connection is closed after this long (a page polls every 1-5 s)
WEB_NICE = 10  # started by `run`: the web process yields the CPU to the game loop


class Stop(Exception):
    """SIGTERM or Ctrl-C: the web process ends its serving loop."""


def make_server(
    app: Any, host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None
) -> BaseWSGIServer | MultiSocketServer:
    """A waitress server for the WSGI app `app` on host:port, or on the listening socket
    `sock`; the body cap is a Flask app's MAX_CONTENT_LENGTH (else BODY_MAX)."""
    where: dict = {"sockets": [sock]} if sock is not None else {"host": host, "port": port}
    # poll(), not select(): a process holding over 1,024 sockets (the customer at a big
    # game's peak, when served in a thread beside it) would kill select()'s thread.
    # A body over the app's cap is refused by waitress before it is read (waitress refuses
    # a body of its limit or more, Flask one over its limit: hence + 1).
    # Idle and slow connections cost a socket each: at the limit the stalest one is closed
    # (`connections.make_room`), so hundreds of them never stop the pages.
    server = create_server(
        app,
        threads=WEB_THREADS,
        asyncore_use_poll=True,
        backlog=BACKLOG,
        max_request_body_size=getattr(app, "config", {}).get("MAX_CONTENT_LENGTH", BODY_MAX) + 1,
        connection_limit=CONNECTION_LIMIT,
        channel_timeout=IDLE_SECONDS,
        cleanup_interval=5,
        **where,
    )
    return connections.make_room(server)


def start_web(
    url: str, host: str, port: int, app: Flask | None = None
) -> BaseWSGIServer | MultiSocketServer:
    """Serve the web app (`app`, else a new one) on host:port from a daemon thread; the
    waitress server (tests and benchmarks; `game-server run` uses a process)."""
    server = make_server(app or create_app({"DATABASE_URL": url}), host, port)
    threading.Thread(target=server.run, name="web", daemon=True).start()
    log.info("web app listening url=http://%s:%s/", server.effective_host, server.effective_port)
    return server


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one) that a web process inherits."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def base_url(sock: socket.socket) -> str:
    """The web app's URL on a listening socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(
    url: str | None,
    host: str,
    port: int,
    listen_fd: int | None = None,
    workers: int = 1,
    hung_after: float = supervisor.HUNG_SECONDS,
) -> None:
    """`game-server web`: serve until SIGTERM or Ctrl-C.

    With `listen_fd` (started by `game-server run`): serve on that inherited socket, at a
    lower CPU priority than the game loop, and stop when stdin (a pipe from `run`) closes,
    so that a killed `run` leaves no web process behind. With `workers` over 1: that many
    worker processes on the one socket, this process their supervisor (`supervisor`),
    which kills and replaces a worker silent for `hung_after` seconds.
    """
    if not 1 <= workers <= supervisor.WORKERS_MAX:
        raise ValueError(f"workers must be between 1 and {supervisor.WORKERS_MAX}, not {workers}")
    if listen_fd is not None:
        os.nice(WEB_NICE)
    config = {"DATABASE_URL": url} if url else None
    checked = create_app(config)  # a bad setting fails here, once, before any fork
    checked.extensions["game_engine"].dispose()  # no connection is shared with a worker
    if listen_fd is not None:
        sock = socket.socket(fileno=listen_fd)
    else:  # systemd's socket (activation.py) if it passed one
        sock = activation.inherited_socket() or listen(host, port)
    log.info("web app listening url=%s pid=%d workers=%d", base_url(sock), os.getpid(), workers)
    work = functools.partial(serve_app, functools.partial(create_app, config), sock)
    if workers == 1:
        if listen_fd is not None:
            supervisor.end_with_stdin()
        work()
    else:
        supervise_workers(work, workers, hung_after, watch_stdin=listen_fd is not None)
    log.info("web app stopped pid=%d", os.getpid())


def supervise_workers(
    work: Callable[[], None], workers: int, hung_after: float, watch_stdin: bool = False
) -> None:
    """`workers` forks of this process running `work()`, supervised in this thread until
    SIGTERM or SIGINT (or the end of stdin); this process's own heartbeat (`run` watches
    it) beats from the supervisor's loop."""
    heartbeat = supervisor.Heartbeat.from_environ()  # the workers get heartbeats of their own
    children = supervisor.Supervisor()
    for slot in range(workers):
        children.add(
            f"worker-{slot}",
            supervisor.Fork(work),
            label="web worker",
            detail=f" slot={slot}",
            restart=True,
            hung_after=hung_after,
        )
    children.run(watch_stdin=watch_stdin, heartbeat=heartbeat)


def serve_app(make_app: Callable[[], Any], sock: socket.socket) -> None:
    """Serve the WSGI app `make_app()` builds on the listening socket `sock` with waitress,
    until SIGTERM or SIGINT (a web worker's whole life; the benchmark's floor uses it too).
    Each turn of waitress' loop (at least one a second) is a heartbeat for a supervisor."""
    app = make_app()
    server = make_server(app, sock=sock)
    beat_each_turn(server, supervisor.Heartbeat.from_environ())
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _stop)
        server.run()
    except Stop:
        pass
    finally:
        server.close()
        server.task_dispatcher.shutdown(timeout=2)


def beat_each_turn(server: Any, heartbeat: supervisor.Heartbeat) -> None:
    """`heartbeat` beats each time waitress' loop asks the listener whether it is readable
    (before each poll, whose timeout is 1 s): a loop that turns is a worker that answers."""
    readable = server.readable

    def beating() -> bool:
        heartbeat.beat()
        return bool(readable())

    server.readable = beating


def _stop(_signum: int, _frame: object) -> None:
    """The signal handler: end the serving loop (in the main thread), once."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)  # a second signal must not break the clean-up
    raise Stop
