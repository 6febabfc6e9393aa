"""`game-server init`, `new` and `export`: the game database created, a fresh game in it,
a game written out."""

import time

import click

from game_server.cli.shared import load_game, open_engine
from game_server.common import settings, state_dir
from game_server.storage import database, fresh, games
from game_server.storage import export as exporter
from game_server.storage import teams as registry


@click.command()
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
    game_file = load_game(game_name)
    engine = open_engine(obj, create=True)
    created = database.init_db(engine)
    try:
        database.prepare_game(engine, game_file)
    except games.GameBusy as exc:
        raise click.ClickException(str(exc)) from None
    what = "created" if created else "exists; game file updated"
    click.echo(f"game database {what}: {database.safe_url(engine)} ({game_file.path})")


@click.command("new")
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
    game_file = load_game(game_name)
    engine = open_engine(obj, create=True)
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


@click.command("export")
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
        counts = exporter.export(open_engine(obj), out)
    except games.NotInitialised as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"exported to {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
