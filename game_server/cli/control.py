"""`game-server control`: start, pause, resume, advance, freeze and finish the running game."""

import click

from game_server.cli.shared import open_engine
from game_server.storage import control as controls
from game_server.storage import games


@click.group()
def control() -> None:
    """Start, pause, resume, advance, freeze and finish the running game."""


def _control_command(action: str, help_text: str) -> None:
    """Declare `game-server control <action>`."""

    @control.command(action, help=help_text)
    @click.pass_obj
    def command(obj: dict) -> None:
        try:
            row = controls.apply(open_engine(obj), action, controls.default_actor("cli"))
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
