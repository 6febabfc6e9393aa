"""What the commands share: the game database chosen by `--db`, a game file by path or
name; either failing is one line (a ClickException)."""

import click
import sqlalchemy as sa

from game_server.scenario import gamefile
from game_server.storage import database


def open_engine(obj: dict, create: bool = False) -> sa.Engine:
    """The game database engine for `--db` / $GAME_DATABASE_URL / the default file; a
    one-line error when none is chosen and the default would be the wrong one."""
    try:
        return database.command_engine(obj["db"], create)
    except database.NoDatabase as exc:
        raise click.ClickException(str(exc)) from None


def load_game(file: str) -> gamefile.GameFile:
    """A game file from a path or a builtin name; ClickException with one line otherwise."""
    try:
        return gamefile.load_game_file(gamefile.game_path(file))
    except gamefile.GameFileError as exc:
        raise click.ClickException(str(exc)) from None
