"""The `game-server` command line: one click group, a sub-group per part of the game."""

import click

from game_server.logs import LEVELS, configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=click.Choice(LEVELS, case_sensitive=False),
    default="INFO",
    show_default=True,
    envvar="GAME_LOG_LEVEL",
    help="Least severe log records to show.",
)
@click.version_option(package_name="game-server")
def main(log_level: str) -> None:
    """Run the workshop game: data, game files, teams, the customer and the web pages."""
    configure_logging(log_level)


@main.group()
def data() -> None:
    """Generate the training data or split your own CSV."""


@main.group()
def game() -> None:
    """Check and describe game files (the timeline of phases)."""


@main.group()
def teams() -> None:
    """Register, list and disable teams in the game database."""


@main.group()
def control() -> None:
    """Start, pause, resume, advance, freeze and finish the running game."""


@main.group()
def users() -> None:
    """Create and delete the teams' Linux accounts on the workshop server."""


@main.command()
def demo() -> None:
    """Play a whole demo game on this machine with bot teams."""
    raise click.ClickException("the demo game is not built yet (issue 8); see README.md")
