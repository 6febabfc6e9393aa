"""`game-server run`: the web app (waitress, in a thread) beside the game loop (main thread).

Ctrl-C and SIGTERM stop the game loop cleanly: rounds in flight are stored, the phase
clock is folded in and the lease released; then the process exits, taking the web
server's thread with it.
"""

import asyncio
import logging
import signal
import threading

import sqlalchemy as sa
from waitress.server import create_server

from game_server import storage
from game_server.game import Game
from game_server.gamefile import GameFile
from game_server.web import create_app

log = logging.getLogger(__name__)

WEB_THREADS = 8


def start_web(url: str, host: str, port: int):
    """Serve the web app on host:port from a daemon thread; the waitress server."""
    app = create_app({"DATABASE_URL": url})
    server = create_server(app, host=host, port=port, threads=WEB_THREADS)
    thread = threading.Thread(target=server.run, name="web", daemon=True)
    thread.start()
    log.info("web app listening url=http://%s:%s/", server.effective_host, server.effective_port)
    return server


def run(engine: sa.Engine, game_file: GameFile, host: str, port: int, start: bool) -> None:
    """Run the game loop until Ctrl-C or SIGTERM, with the web app beside it."""
    game = Game(engine, game_file)
    url = engine.url.render_as_string(hide_password=False)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, game.stop)
        server = None

        def started() -> None:
            nonlocal server
            server = start_web(url, host, port)

        try:
            await game.run(started=started, start=start)
        finally:
            if server is not None:
                server.close()
                server.task_dispatcher.shutdown(timeout=1)

    log.info("game run db=%s game_file=%s", storage.safe_url(engine), game_file.path)
    asyncio.run(main())
