"""`game-server run`: the game loop in this process, the web app in a child process.

The pages run in `game-server web`, a process of its own that shares nothing with the
game loop but the database: no page, however hammered, can slow a round (GAME.md §9).
This process makes the listening socket (a busy port fails here, before anything starts)
and hands it to the child, restarts the child if it dies or hangs (the socket stays open,
so connections wait in its backlog meanwhile), and stops it with the loop (`supervisor`).

Ctrl-C and SIGTERM stop the game loop cleanly: rounds in flight are stored, the phase
clock is folded in and the lease released; then the web process is stopped. `run`
returns only after such a stop; any other end (a lost lease, an error) raises `LoopEnded`
or the error itself, so `game-server run` exits non-zero and a supervisor restarts it.
"""

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import IO, Any

import sqlalchemy as sa

from game_server.common import settings, supervisor
from game_server.play import eventloop
from game_server.play.loop import Game
from game_server.play.metrics import MetricsServer
from game_server.processes import activation, webserver
from game_server.scenario.gamefile import GameFile
from game_server.storage import database
from game_server.storage.shards import WHOLE, Shard
from game_server.web.app import check_settings

log = logging.getLogger(__name__)

WATCH_SECONDS = 1.0  # how often the web process is checked


class LoopEnded(RuntimeError):
    """The game loop stopped without being asked to (its reason is the message)."""


class WebProcess:
    """`game-server web` as a child process on a socket made here: started, restarted when
    it dies or hangs, stopped (`supervisor`: the one way for every child of the game)."""

    def __init__(
        self,
        url: str,
        sock: socket.socket | None,
        stderr: IO[str] | None = None,
        workers: int = 1,
        hung_after: float = supervisor.HUNG_SECONDS,
    ):
        """Settings only (nothing starts until `start()`; nothing at all without a socket);
        `workers`: its worker processes; `hung_after`: a web process (or worker) silent
        this long is killed and replaced."""
        self.url = url
        self.workers = workers
        self.hung_after = hung_after
        self.sock = sock
        self.stderr = stderr
        self.children = supervisor.Supervisor()

    def start(self) -> None:
        """Start the web process; its database URL goes in the environment, which only its
        user and root can read (a command line is shown by `ps` to every team). It leads a
        process group of its own: Ctrl-C in the terminal reaches the loop, which stops it."""
        if self.sock is None:
            return  # `run --no-web`
        fd = self.sock.fileno()
        env = {
            **os.environ,
            settings.DATABASE_URL.env: self.url,
            settings.LOG_LEVEL.env: logging.getLevelName(logging.getLogger().getEffectiveLevel()),
        }
        argv = [sys.executable, "-m", "game_server", "web", "--listen-fd", str(fd)]
        argv += ["--workers", str(self.workers), "--worker-timeout", str(self.hung_after)]
        command = supervisor.Command(argv, env, stderr=self.stderr, pass_fds=(fd,), group=True)
        self.children.add(
            "web", command, label="web process", restart=True, hung_after=self.hung_after
        )
        log.info("web app url=%s", webserver.base_url(self.sock))

    def check(self) -> None:
        """Restart the web process when it has died or hung (one line in the log)."""
        self.children.check()

    async def watch(self) -> None:
        """Check the web process every second (off the event loop: starting one blocks)."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            await asyncio.to_thread(self.check)

    def stop(self) -> None:
        """Stop the web process: SIGTERM, then SIGKILL if it does not end in time."""
        self.children.stopping = True
        self.children.stop_all()
        self.children.close()


def run(
    engine: sa.Engine,
    game_file: GameFile,
    host: str,
    port: int | None,
    start: bool,
    beside: Callable[[Game, str], Coroutine[Any, Any, None]] | None = None,
    log_file: IO[str] | None = None,
    web_workers: int = 1,
    metrics_port: int | None = None,
    shard: Shard = WHOLE,
    worker_timeout: float = supervisor.HUNG_SECONDS,
) -> None:
    """Run the game loop until Ctrl-C or SIGTERM, with the web app in a child process.

    Returns after such a stop only; `LoopEnded` when the loop stopped by itself.
    `shard`: the teams this loop plays (`storage.shards`); `port` None: no web app;
    `beside(game, web_url)` (the demo's supervisor) runs in the loop once the web app is
    up; the game stops when it returns, and it is cancelled when the game stops first.
    The web logs to `log_file` (default: stderr), in `web_workers` processes, replaced when
    silent `worker_timeout` s; `metrics_port`: the loop's metrics (play/metrics.py).
    """
    url = engine.url.render_as_string(hide_password=False)
    check_settings()  # a bad setting stops here (ConfigError), before anything starts
    # systemd's socket (activation.py) if it passed one, else our own; a busy port: OSError
    sock = None if port is None else activation.inherited_socket() or webserver.listen(host, port)
    web = WebProcess(url, sock, log_file, web_workers, worker_timeout)
    game = Game(engine, game_file, shard=shard)
    exporter = None if metrics_port is None else _metrics_server(game, metrics_port, sock)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, game.stop)
        watcher: asyncio.Task | None = None
        companion: asyncio.Task | None = None

        def started() -> None:
            nonlocal watcher, companion
            web.start()
            watcher = asyncio.create_task(web.watch(), name="web")
            if beside is not None and sock is not None:
                companion = asyncio.create_task(beside(game, webserver.base_url(sock)))
                companion.add_done_callback(lambda _task: game.stop())

        try:
            await game.run(started=started, start=start)
        finally:
            await _stop_beside(web, watcher, companion)

    log.info("game run db=%s file=%s shard=%s", database.safe_url(engine), game_file.path, shard)
    try:
        eventloop.run(main())
    finally:
        if sock is not None:
            sock.close()
        if exporter is not None:
            exporter.close()
    if game.stopped_by != "stop":
        raise LoopEnded(f"the game loop stopped by itself: {game.stopped_by or 'unknown'}")


async def _stop_beside(
    web: WebProcess, watcher: asyncio.Task | None, companion: asyncio.Task | None
) -> None:
    """After the game: stop watching the web, cancel the companion, then stop the web."""
    web.children.stopping = True
    if watcher is not None:
        watcher.cancel()
    try:
        if companion is not None:
            companion.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await companion  # its own errors propagate: the demo reports them
    finally:
        await asyncio.to_thread(web.stop)


def _metrics_server(game: Game, port: int, sock: socket.socket | None) -> MetricsServer:
    """The loop's metrics on 127.0.0.1:port, serving now; a busy port closes `sock`."""
    try:
        exporter = MetricsServer(game.metrics.registry, "127.0.0.1", port).start()
    except OSError as exc:  # the port is taken: one line, and the web's socket is freed
        if sock is not None:
            sock.close()
        msg = f"--metrics-port {port}: cannot listen on 127.0.0.1:{port} ({exc.strerror or exc})"
        raise OSError(msg) from exc
    log.info("metrics listening url=http://127.0.0.1:%d/metrics", exporter.port)
    return exporter
