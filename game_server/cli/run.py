"""`game-server run` and `game-server web`: the commands that start the game's processes
(`processes.serve`, `processes.webserver`, imported only when one runs)."""

import click

from game_server.cli.shared import load_game, open_engine
from game_server.common.supervisor import HUNG_SECONDS, WORKERS_MAX
from game_server.processes import oom
from game_server.storage import database, games, shards

WORKERS_OPTION = click.option(
    "--workers",
    type=click.IntRange(1, WORKERS_MAX),
    default=1,
    show_default=True,
    help="Web worker processes on the one port (each 8 threads; a supervisor restarts them).",
)
WORKER_TIMEOUT_OPTION = click.option(
    "--worker-timeout",
    type=click.FloatRange(1, 3600),
    default=HUNG_SECONDS,
    show_default=True,
    help="Seconds a web worker (or `run`'s web process) may be silent: then it is replaced.",
)


@click.command()
@click.option(
    "--game",
    "game_name",
    default=None,
    help="Game file (a path, or workshop/demo); default: the one `init` stored.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Web server address.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--start", is_flag=True, help="Start the game at once (when in the lobby).")
@WORKERS_OPTION
@WORKER_TIMEOUT_OPTION
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve the loop's Prometheus metrics on 127.0.0.1:PORT/metrics (default: off).",
)
@click.option("--shard", "shard_text", default="1/1", help="Play shard I/N of the teams [1/1].")
@click.option("--no-web", is_flag=True, help="Run the game loop only, no web app.")
@click.pass_obj
def run(
    obj: dict,
    game_name: str | None,
    host: str,
    port: int,
    start: bool,
    workers: int,
    worker_timeout: float,
    metrics_port: int | None,
    shard_text: str,
    no_web: bool,
) -> None:
    """Run the game: the customer's game loop, and the web app (its own process) on HOST:PORT."""
    try:
        shard = shards.Shard.parse(shard_text)
    except ValueError as exc:
        raise click.ClickException(f"--shard: {exc}") from None
    oom.protect_self()  # a team's runaway process, not the game, is the OOM killer's pick
    engine = open_engine(obj, create=True)
    database.init_db(engine)
    if game_name is None:
        with engine.connect() as conn:
            game_name = games.game_row(conn).game_file or "workshop"
    # the web app and the loop: imported only by the commands that run them
    from game_server.processes import serve
    from game_server.web.app import ConfigError

    try:
        port_or_none = None if no_web else port
        serve.run(
            engine,
            load_game(game_name),
            host,
            port_or_none,
            start,
            web_workers=workers,
            metrics_port=metrics_port,
            shard=shard,
            worker_timeout=worker_timeout,
        )
    except (games.GameBusy, games.NotInitialised, OSError, ConfigError, serve.LoopEnded) as exc:
        raise click.ClickException(str(exc)) from None  # exit status 1: restarted


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--listen-fd", type=int, default=None, hidden=True)  # from `run`: its socket
@WORKERS_OPTION
@WORKER_TIMEOUT_OPTION
@click.pass_obj
def web(
    obj: dict, host: str, port: int, listen_fd: int | None, workers: int, worker_timeout: float
) -> None:
    """Serve the pages and the JSON API only (`run` starts this as a process of its own)."""
    from game_server.processes import webserver
    from game_server.web.app import ConfigError

    try:
        webserver.serve(obj["db"], host, port, listen_fd, workers, worker_timeout)
    except (OSError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
