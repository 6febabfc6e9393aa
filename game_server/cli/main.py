"""The `game-server` command line: one click group, a sub-group per part of the game."""

import time

import click
import sqlalchemy as sa

from game_server import oom, settings, state_dir, teams_cli
from game_server.accounts import cli as users_cli
from game_server.demo.command import demo
from game_server.doctor import doctor
from game_server.logs import configure_logging
from game_server.rehearsal.cli import rehearse_command
from game_server.scenario import gamefile, gamekeys, owndata, population, timeline
from game_server.storage import control as controls
from game_server.storage import database, fresh, games, shards
from game_server.storage import export as exporter
from game_server.storage import teams as registry
from game_server.supervisor import HUNG_SECONDS, WORKERS_MAX


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@settings.option(settings.LOG_LEVEL)
@settings.option(settings.DATABASE_URL)
@click.version_option(package_name="game-server")
@click.pass_context
def main(ctx: click.Context, log_level: str, db: str | None) -> None:
    """Run the workshop game: data, game files, teams, the customer and the web pages."""
    configure_logging(log_level)
    ctx.obj = {"db": db}


@main.group()
def data() -> None:
    """Generate the training data or split your own CSV."""


@data.command("generate")
@click.option(
    "--rows",
    type=click.IntRange(min=100),
    default=population.DEFAULT_ROWS,
    show_default=True,
    help="Number of applicants.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=population.DEFAULT_DATA_SEED,
    show_default=True,
    help="Seed: the same seed gives the same bytes.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default="data/train_data.csv",
    show_default=True,
    help="Where to write the CSV.",
)
def data_generate(rows: int, seed: int, out: str) -> None:
    """Generate the training data from the seeded applicant generator."""
    frame = population.write_training_csv(out, rows, seed)
    click.echo(f"wrote {out}: {len(frame)} rows, default rate {frame[population.LABEL].mean():.1%}")


@data.command("split")
@click.argument("csv", type=click.Path(dir_okay=False))
@click.option("--label", required=True, help="The label column (values 0 and 1).")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory for train_data.csv (public) and pool.csv (hidden).",
)
@click.option(
    "--pool-share",
    type=click.FloatRange(0.05, 0.95),
    default=0.3,
    show_default=True,
    help="Share of the rows that go to the hidden pool.",
)
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True)
def data_split(csv: str, label: str, out_dir: str, pool_share: float, seed: int) -> None:
    """Split your own CSV into a public training file and a hidden pool (stratified)."""
    try:
        summary = owndata.split_csv(csv, label, out_dir, pool_share, seed)
    except owndata.OwnDataError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"wrote {summary['train']} ({summary['train_rows']} rows, give it to the teams) and "
        f"{summary['pool']} ({summary['pool_rows']} rows, keep it hidden); "
        f"label rate {summary['default_rate']:.1%}"
    )
    click.echo(f'play it with a game file holding:  [game] pool = "{summary["pool"]}"')


@main.group()
def game() -> None:
    """Check and describe game files (the timeline of phases)."""


@game.command("check")
@click.argument("file")
@click.option(
    "--teams",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Team count for the request totals.",
)
def game_check(file: str, teams: int) -> None:
    """Validate a game file (a path, or "workshop" / "demo") and print its timeline."""
    try:
        game_file = gamefile.load_game_file(gamefile.game_path(file))
        if game_file.settings.pool:
            owndata.load_pool(
                game_file.settings.pool,
                game_file.settings.training_data,
                game_file.settings.label_column,
            )
    except (gamefile.GameFileError, owndata.OwnDataError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(timeline.describe(game_file, teams))


@game.command("keys")
def game_keys() -> None:
    """Print the table of every game-file key (the reference in docs/GAMEFILE.md)."""
    click.echo(gamekeys.settings_markdown())


@main.group()
def control() -> None:
    """Start, pause, resume, advance, freeze and finish the running game."""


def _control_command(action: str, help_text: str) -> None:
    """Declare `game-server control <action>`."""

    @control.command(action, help=help_text)
    @click.pass_obj
    def command(obj: dict) -> None:
        try:
            row = controls.apply(_engine(obj), action, controls.default_actor("cli"))
        except (controls.ControlError, games.NotInitialised) as exc:
            raise click.ClickException(str(exc)) from None
        frozen = ", leaderboard frozen" if row.frozen else ""
        click.echo(f"{action}: the game is {row.state}, phase {row.phase_index}{frozen}")


for _action, _help in (
    ("start", "Start the game (from the lobby) with its first phase."),
    ("pause", "Pause the game: no requests, the phase clock stops."),
    ("resume", "Resume a paused game."),
    ("next-phase", "Move to the next phase now (finishes after the last one)."),
    ("freeze", "Freeze the public leaderboard (final standings revealed at the end)."),
    ("unfreeze", "Show the live leaderboard again."),
    ("finish", "End the game and reveal the real standings."),
):
    _control_command(_action, _help)


def _engine(obj: dict, create: bool = False) -> sa.Engine:
    """The game database engine for `--db` / $GAME_DATABASE_URL / the default file; a
    one-line error when none is chosen and the default would be the wrong one."""
    try:
        return database.command_engine(obj["db"], create)
    except database.NoDatabase as exc:
        raise click.ClickException(str(exc)) from None


def _load_game(file: str) -> gamefile.GameFile:
    """A game file from a path or a builtin name; ClickException with one line otherwise."""
    try:
        return gamefile.load_game_file(gamefile.game_path(file))
    except gamefile.GameFileError as exc:
        raise click.ClickException(str(exc)) from None


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


@main.command()
@click.option(
    "--game",
    "game_name",
    default="workshop",
    show_default=True,
    help="Game file: a path, or a builtin game (workshop, demo).",
)
@click.pass_obj
def init(obj: dict, game_name: str) -> None:
    """Create the game database with its game file (settings, allow-list and phases)."""
    game_file = _load_game(game_name)
    engine = _engine(obj, create=True)
    created = database.init_db(engine)
    try:
        database.prepare_game(engine, game_file)
    except games.GameBusy as exc:
        raise click.ClickException(str(exc)) from None
    what = "created" if created else "exists; game file updated"
    click.echo(f"game database {what}: {database.safe_url(engine)} ({game_file.path})")


@main.command("new")
@click.option(
    "--game",
    "game_name",
    default="workshop",
    show_default=True,
    help="Game file of the new game: a path, or a builtin game (workshop, demo).",
)
@click.option("--no-export", is_flag=True, help="Do not export the old game first.")
@click.pass_obj
def new_game(obj: dict, game_name: str, no_export: bool) -> None:
    """A fresh game in the configured database (created if empty): the old game exported
    first, its rows removed, the teams kept with their tokens. Refused while a game runs."""
    game_file = _load_game(game_name)
    engine = _engine(obj, create=True)
    database.init_db(engine)  # an empty database gets its tables and a game in the lobby
    try:
        with engine.connect() as conn:
            reason = fresh.still_running(conn, time.time())
            played = fresh.was_played(conn)
        if reason:
            raise games.GameBusy(f"cannot start a new game: {reason}")
        if played and not no_export:
            out = state_dir.new_export_dir()
            exporter.export(engine, out)
            click.echo(f"the old game is exported to {out}")
        deleted = fresh.replace_game(engine, game_file)
    except games.GameBusy as exc:
        raise click.ClickException(str(exc)) from None
    with engine.connect() as conn:
        kept = len(registry.list_teams(conn))
    click.echo(
        f"new game in {database.safe_url(engine)} ({game_file.path}), in the lobby: "
        f"{deleted.get('requests', 0)} requests of the old game removed, "
        f"{kept} teams kept with their tokens"
    )


@main.command()
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
    engine = _engine(obj, create=True)
    database.init_db(engine)
    if game_name is None:
        with engine.connect() as conn:
            game_name = games.game_row(conn).game_file or "workshop"
    from game_server import serve  # the web app and the loop: only for the commands that run them
    from game_server.web.app import ConfigError

    try:
        port_or_none = None if no_web else port
        serve.run(
            engine,
            _load_game(game_name),
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


@main.command()
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
    from game_server import webserver
    from game_server.web.app import ConfigError

    try:
        webserver.serve(obj["db"], host, port, listen_fd, workers, worker_timeout)
    except (OSError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command("export")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory (default: exports/<date and time> in the private state folder, "
    f"${settings.STATE_DIR.env} or ~/.local/state/game-server).",
)
@click.pass_obj
def export_command(obj: dict, out: str | None) -> None:
    """Write teams, requests, results and totals per phase as CSV and JSON."""
    out = str(state_dir.private_dir(out) if out else state_dir.new_export_dir())  # private
    try:
        counts = exporter.export(_engine(obj), out)
    except games.NotInitialised as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"exported to {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@main.group()
def users() -> None:
    """Create and delete the teams' Linux accounts on the workshop server."""


for _command in users_cli.COMMANDS:
    users.add_command(_command)

main.add_command(demo)
main.add_command(doctor)
main.add_command(rehearse_command)
main.add_command(teams_cli.teams)
main.add_command(teams_cli.allow)
