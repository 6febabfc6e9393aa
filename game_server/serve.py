"""`game-server run`: the web app (waitress, in a thread) beside the game loop (main thread).

Ctrl-C and SIGTERM stop the game loop cleanly: rounds in flight are stored, the phase
clock is folded in and the lease released; then the process exits, taking the web
server's thread with it.
"""

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import sqlalchemy as sa
from flask import Flask
from waitress.server import create_server

from game_server.play.loop import Game
from game_server.scenario.gamefile import GameFile
from game_server.storage import database
from game_server.web.app import create_app

log = logging.getLogger(__name__)

WEB_THREADS = 8


def start_web(url: str, host: str, port: int, app: Flask | None = None):
    """Serve the web app (`app`, else a new one) on host:port from a daemon thread; the
    waitress server."""
    if app is None:
        app = create_app({"DATABASE_URL": url})
    # poll(), not select(): at a big game's peak the customer holds over 1,024 sockets, and
    # select() cannot watch a file descriptor above that (the web thread would die).
    # A body over the app's cap is refused by waitress before it is read (waitress refuses
    # a body of its limit or more, Flask one over its limit: hence + 1).
    server = create_server(
        app,
        host=host,
        port=port,
        threads=WEB_THREADS,
        asyncore_use_poll=True,
        max_request_body_size=app.config["MAX_CONTENT_LENGTH"] + 1,
    )
    thread = threading.Thread(target=server.run, name="web", daemon=True)
    thread.start()
    log.info("web app listening url=http://%s:%s/", server.effective_host, server.effective_port)
    return server


def run(
    engine: sa.Engine,
    game_file: GameFile,
    host: str,
    port: int,
    start: bool,
    beside: Callable[[Game, str], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Run the game loop until Ctrl-C or SIGTERM, with the web app beside it.

    `beside(game, web_url)` (the demo's supervisor) runs in the loop once the web app is
    up; the game stops when it returns, and it is cancelled when the game stops first.
    """
    url = engine.url.render_as_string(hide_password=False)
    app = create_app({"DATABASE_URL": url})  # a bad setting stops here (ConfigError), first
    game = Game(engine, game_file)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, game.stop)
        server = None
        companion: asyncio.Task | None = None

        def started() -> None:
            nonlocal server, companion
            server = start_web(url, host, port, app)
            if beside is not None:
                web_url = f"http://{server.effective_host}:{server.effective_port}/"
                companion = asyncio.create_task(beside(game, web_url), name="beside")
                companion.add_done_callback(lambda _task: game.stop())

        try:
            await game.run(started=started, start=start)
        finally:
            if companion is not None:
                companion.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await companion  # its own errors propagate: the demo reports them
            if server is not None:
                server.close()
                server.task_dispatcher.shutdown(timeout=1)

    log.info("game run db=%s game_file=%s", database.safe_url(engine), game_file.path)
    asyncio.run(main())
