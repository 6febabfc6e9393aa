"""`game-server game`: a game file checked and its timeline printed; the keys' reference."""

import click

from game_server.scenario import gamefile, gamekeys, owndata, timeline


@click.group()
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
