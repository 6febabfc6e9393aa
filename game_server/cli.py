"""The `game-server` command line: one click group, a sub-group per part of the game."""

from pathlib import Path

import click

from game_server import gamefile, owndata, population
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
        path = file if Path(file).exists() else gamefile.builtin_game_path(file)
        game_file = gamefile.load_game_file(path)
        if game_file.settings.pool:
            owndata.load_pool(
                game_file.settings.pool,
                game_file.settings.training_data,
                game_file.settings.label_column,
            )
    except (gamefile.GameFileError, owndata.OwnDataError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(gamefile.describe(game_file, teams))


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
