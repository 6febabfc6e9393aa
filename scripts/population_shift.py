"""Draw the deck's animated population shift (a GIF) from the game's real request stream.

    python scripts/population_shift.py [--out DIR] [--game workshop]

The customer's requests come from the game server's own Scenario: the warm-up phase's
applicants, then the population-shift phase's, as the chosen game file defines them. A
monitoring window of the last requests slides from one phase into the next, and each frame
shows that window against the training data, with the drift statistic (PSI) per feature:
what a team watching its logged requests would see.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures are files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from game_server.scenario.gamefile import GameFile, builtin_game_path, load_game_file  # noqa: E402
from game_server.scenario.stream import Scenario  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "slides" / "figures"
NAME = "population_shift.gif"
WINDOW = 500  # requests in the monitoring window
STEPS = 10  # frames while the window slides from one phase into the next
HOLD = 3  # extra frames at each end, so the eye can read them
DPI = 96
NOW = "#e08a2c"


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two histograms of counts (same bins)."""
    e = np.maximum(expected / expected.sum(), 1e-4)
    a = np.maximum(actual / max(actual.sum(), 1), 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


def phase_index(game: GameFile, kind: str) -> int:
    """The index of the first phase of `kind` in the game file."""
    for i, phase in enumerate(game.phases):
        if phase.kind == kind:
            return i
    raise SystemExit(f"population_shift: the game file has no {kind!r} phase")


def request_stream(game: GameFile) -> tuple[pd.DataFrame, pd.DataFrame]:
    """WINDOW warm-up requests followed by WINDOW population-shift requests, as sent; the
    training data."""
    scenario = Scenario(game)
    rows = []
    for kind in ("warmup", "shift"):
        index = phase_index(game, kind)
        rows += [scenario.draw(index, seq).features for seq in range(WINDOW)]
    frame = pd.DataFrame(rows)
    # Messy requests may carry text or out-of-range numbers: count only valid numbers.
    for name in ("age", "loan_amount"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce")
    return frame, scenario.training_frame()


AGE_BINS = np.arange(18, 84, 5)
LOAN_BINS = np.geomspace(500, 250_000, 26)


Counts = tuple[np.ndarray, ...]  # age, loan amount and region histograms


def counts(frame: pd.DataFrame, regions: list[str]) -> Counts:
    """Histograms of age, loan amount and region for one window of requests."""
    region = frame["region"].value_counts().reindex(regions, fill_value=0).to_numpy()
    return (
        np.histogram(frame["age"].dropna(), AGE_BINS)[0],
        np.histogram(frame["loan_amount"].dropna(), LOAN_BINS)[0],
        region,
    )


def draw_numbers(axes: Sequence[Axes], base: Counts, now: Counts) -> None:
    """Age and loan amount: the window's bars against the training data's outline."""
    panels = [
        (axes[0], AGE_BINS[:-1], np.diff(AGE_BINS), "age (years)", False),
        (axes[1], LOAN_BINS[:-1], np.diff(LOAN_BINS), "loan amount (EUR)", True),
    ]
    for i, (ax, left, width, label, log_x) in enumerate(panels):
        ax.bar(
            left,
            now[i] / max(now[i].sum(), 1),
            width,
            align="edge",
            color=NOW,
            label="recent requests",
        )
        edges = np.append(left, left[-1] + width[-1])
        ax.stairs(base[i] / base[i].sum(), edges, color="black", linewidth=2, label="training data")
        ax.set_xlabel(label)
        if log_x:
            ax.set_xscale("log")


def draw_regions(ax: Axes, regions: list[str], base: Counts, now: Counts) -> None:
    """Region: the window's bars against the training data's outline."""
    x = np.arange(len(regions))
    ax.bar(x, now[2] / now[2].sum(), 0.7, color=NOW)
    ax.bar(x, base[2] / base[2].sum(), 0.7, fill=False, edgecolor="black", lw=2)
    ax.set_xticks(x, regions, rotation=30, fontsize=9)
    ax.set_xlabel("region")


def draw(
    fig: Figure,
    axes: Sequence[Axes],
    stream: pd.DataFrame,
    train: pd.DataFrame,
    regions: list[str],
    step: int,
) -> None:
    """Draw one frame: the window starting `step / STEPS` of the way into the shift."""
    start = round(WINDOW * step / STEPS)
    base, now = counts(train, regions), counts(stream.iloc[start : start + WINDOW], regions)
    for ax in axes:
        ax.clear()
    draw_numbers(axes, base, now)
    draw_regions(axes[2], regions, base, now)
    for ax, name, i in zip(axes, ("age", "loan amount", "region"), range(3), strict=True):
        ax.set_title(f"{name}: PSI {psi(base[i], now[i]):.2f}", fontsize=12)
        ax.set_yticks([])
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
    axes[0].legend(frameon=False, fontsize=9, loc="upper right")
    share = round(100 * step / STEPS)
    fig.suptitle(
        f"The last {WINDOW} requests: {share}% from the population-shift phase",
        fontsize=13,
    )
    fig.tight_layout()


def animate(game: GameFile, out: Path) -> Path:
    """Write the GIF of the monitoring window sliding into the shifted population."""
    stream, train = request_stream(game)
    shifted_region = game.phases[phase_index(game, "shift")].shift.new_region
    regions = sorted(set(train["region"].dropna())) + ([shifted_region] if shifted_region else [])
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.0), dpi=DPI)
    frames = [0] * HOLD + list(range(STEPS + 1)) + [STEPS] * HOLD
    anim = FuncAnimation(fig, lambda step: draw(fig, axes, stream, train, regions, step), frames)
    path = out / NAME
    anim.save(path, writer=PillowWriter(fps=5), dpi=DPI)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    """Draw the animation for a built-in game file into the output folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder")
    parser.add_argument("--game", default="workshop", help="built-in game file to draw from")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    game = load_game_file(builtin_game_path(args.game))
    print(f"figures: wrote {animate(game, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
