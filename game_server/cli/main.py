"""The `game-server` command line: one click group, a sub-group per part of the game.

The composition root: the group and its options (`--log-level`, `--db`); each command or
sub-group is declared in a module of its own here (or in its part: `users`, `demo`,
`rehearse`) and added to the group below.
"""

import click

from game_server.accounts import cli as users_cli
from game_server.cli import teams
from game_server.cli.control import control
from game_server.cli.data import data
from game_server.cli.database import export_command, init, new_game
from game_server.cli.doctor import doctor
from game_server.cli.game import game
from game_server.cli.run import run, web
from game_server.common import settings
from game_server.common.logs import configure_logging
from game_server.demo.command import demo
from game_server.rehearsal.cli import rehearse_command


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
def users() -> None:
    """Create and delete the teams' Linux accounts on the workshop server."""


for _command in users_cli.COMMANDS:
    users.add_command(_command)

for _part in (data, game, control, init, new_game, run, web, export_command, demo, doctor):
    main.add_command(_part)
main.add_command(rehearse_command)
main.add_command(teams.teams)
main.add_command(teams.allow)
