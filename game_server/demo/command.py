"""`game-server demo`: the command (the bots' machinery is imported only when it runs)."""

import logging

import click

from game_server.accounts.levels import LEVELS as STARTER_LEVELS
from game_server.common.extras import require
from game_server.common.logs import configure_logging
from game_server.scenario import gamefile


@click.command()
@click.option(
    "--teams",
    "team_count",
    type=click.IntRange(1, 50),
    default=5,
    show_default=True,
    help="Bot teams, cycling through the variants (starter, careful, leaky, devserver, flaky).",
)
@click.option(
    "--game",
    "game_name",
    default="demo",
    show_default=True,
    help="Game file: a path, or a builtin game (demo, workshop).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=10),
    default=None,
    help="Compress (or stretch) the game's phases to this many seconds in all.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--no-browser", is_flag=True, help="Do not open the leaderboard in a browser.")
@click.option(
    "--starter",
    "starter_level",
    type=click.Choice(STARTER_LEVELS),
    default="complete",
    help="The starter's level the bots play (default: complete; exercises: they "
    "begin with the leak).",
)
@click.option(
    "--team",
    "team_specs",
    multiple=True,
    metavar="NAME=URL",
    help="Your own running API as a team beside the bots (repeatable), e.g. "
    "--team me=http://127.0.0.1:5000/predict; its token is printed.",
)
def demo(
    team_count: int,
    game_name: str,
    duration: float | None,
    port: int,
    no_browser: bool,
    starter_level: str,
    team_specs: tuple[str, ...],
) -> None:
    """Play a whole demo game on this machine with bot teams (leaderboard on --port)."""
    require("demo", "game-server demo")  # the bots train and serve the starter
    from game_server.demo import run as demos  # the bots' machinery, only for this command
    from game_server.demo.own import parse_team
    from game_server.web.app import ConfigError

    try:
        own_teams = [parse_team(spec) for spec in team_specs]
    except ValueError as exc:
        raise click.ClickException(f"--team {exc}") from None

    # The game's log goes to the demo's folder; the terminal shows the demo's own lines.
    level = logging.getLevelName(logging.getLogger().level)
    configure_logging("WARNING")
    try:
        game_file = gamefile.load_game_file(gamefile.game_path(game_name))
    except gamefile.GameFileError as exc:
        raise click.ClickException(str(exc)) from None
    if duration is not None:
        game_file = demos.compress(game_file, duration)
    try:
        demos.Demo(
            game_file,
            team_count,
            port,
            not no_browser,
            starter_level,
            echo=click.echo,
            log_level=level,
            own_teams=own_teams,
        ).run()
    except (demos.DemoError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
