"""`game-server data`: the training data generated, or an instructor's own CSV split."""

import click

from game_server.scenario import owndata, population


@click.group()
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
