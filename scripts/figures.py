"""Draw the deck's diagrams into slides/figures/ (or another folder), reproducibly.

    python scripts/figures.py [--out DIR]

Every figure is drawn with matplotlib from code and a fixed seed; the phase timeline reads
the workshop game file that ships with the game server, so it shows the real phases.
The animated population shift has its own script, scripts/population_shift.py.
"""

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures are files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "slides" / "figures"
SEED = 20240611
DPI = 100
# No version or date in the files: the same code draws the same bytes.
METADATA = {"Software": None}

BLUE, ORANGE, GREEN, RED, GREY = "#3b6ea5", "#e08a2c", "#4a9a5b", "#c0504d", "#6b6b6b"
Point = tuple[float, float]
LIGHT = {BLUE: "#dce7f3", ORANGE: "#fbe8d3", GREEN: "#dff0e2", RED: "#f5dcdb", GREY: "#ececec"}


def canvas(width: float, height: float) -> tuple[Figure, Axes]:
    """A blank figure whose axes run 0..width by 0..height, without ticks or frame."""
    fig, ax = plt.subplots(figsize=(width, height), dpi=DPI)
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.subplots_adjust(0, 0, 1, 1)
    return fig, ax


def box(
    ax: Axes,
    x: float,
    y: float,
    w: float,
    h: float,
    text: str,
    color: str = BLUE,
    size: float = 13,
    bold: bool = False,
) -> None:
    """A rounded box centred on (x, y) with centred text."""
    patch = FancyBboxPatch(
        (x - w / 2, y - h / 2),
        w,
        h,
        boxstyle="round,pad=0.02,rounding_size=0.12",
        facecolor=LIGHT[color],
        edgecolor=color,
        linewidth=2,
    )
    ax.add_patch(patch)
    weight = "bold" if bold else "normal"
    ax.text(x, y, text, ha="center", va="center", fontsize=size, weight=weight, wrap=True)


def arrow(
    ax: Axes,
    start: Point,
    end: Point,
    color: str = GREY,
    text: str = "",
    style: str = "-|>",
    dashed: bool = False,
    offset: Point = (0, 0.18),
) -> None:
    """An arrow from start to end, optionally labelled at its middle."""
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=18,
            linewidth=2,
            color=color,
            linestyle="--" if dashed else "-",
            shrinkA=2,
            shrinkB=2,
        )
    )
    if text:
        mx, my = (start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1]
        ax.text(mx, my, text, ha="center", va="bottom", fontsize=11, color=color)


def save(fig: Figure, out: Path, name: str) -> Path:
    """Write a figure as PNG and close it."""
    path = out / name
    fig.savefig(path, dpi=DPI, metadata=METADATA)
    plt.close(fig)
    return path


def draw_dtap(out: Path) -> Path:
    """Develop, Test, Acceptance, Production: code and model move right, feedback comes back."""
    fig, ax = canvas(12, 3.6)
    steps = [
        ("Develop", "notebook, laptop\nsample data", GREY),
        ("Test", "automated tests\nclean machine", BLUE),
        ("Acceptance", "users check it\nrecent real data", ORANGE),
        ("Production", "real requests\nreal decisions", GREEN),
    ]
    xs = [1.6, 4.55, 7.5, 10.45]
    for x, (name, sub, color) in zip(xs, steps, strict=True):
        box(ax, x, 2.15, 2.3, 1.2, name, color, size=16, bold=True)
        ax.text(x, 0.95, sub, ha="center", va="center", fontsize=11, color=GREY)
    for a, b in zip(xs, xs[1:], strict=False):
        arrow(ax, (a + 1.2, 2.15), (b - 1.2, 2.15))
    ax.text(6, 3.3, "code + data + model, released together", ha="center", fontsize=12)
    arrow(ax, (10.45, 0.45), (1.6, 0.45), color=RED, dashed=True, offset=(0, -0.42))
    ax.text(
        6,
        0.05,
        "what production teaches you goes back to development",
        ha="center",
        fontsize=11,
        color=RED,
    )
    return save(fig, out, "dtap.png")


def draw_batch_vs_api(out: Path) -> Path:
    """Batch scoring on a schedule against on-demand scoring per request."""
    fig, ax = canvas(12, 4.4)
    ax.text(3, 4.05, "Batch", ha="center", fontsize=17, weight="bold", color=BLUE)
    box(ax, 1.2, 2.6, 1.9, 1.0, "table of\ncustomers", GREY, size=12)
    box(ax, 3.5, 2.6, 1.7, 1.0, "model\n(nightly job)", BLUE, size=12)
    box(ax, 5.2, 1.0, 1.5, 0.9, "table of\nscores", GREY, size=12)
    arrow(ax, (2.15, 2.6), (2.65, 2.6))
    arrow(ax, (3.9, 2.1), (4.7, 1.45))
    ax.text(
        1.6,
        1.0,
        "every night at 02:00\nall rows at once\nchecked before use",
        ha="center",
        va="center",
        fontsize=11,
        color=GREY,
    )

    ax.plot([6.2, 6.2], [0.3, 4.1], color="#cccccc", linewidth=1.5)

    ax.text(9.1, 4.05, "On demand (API)", ha="center", fontsize=17, weight="bold", color=GREEN)
    box(ax, 7.4, 2.6, 1.5, 1.0, "client", GREY, size=13)
    box(ax, 10.6, 2.6, 1.9, 1.0, "API +\nmodel", GREEN, size=13)
    arrow(ax, (8.2, 2.85), (9.6, 2.85), text="request")
    arrow(ax, (9.6, 2.35), (8.2, 2.35), text="answer", offset=(0, -0.5))
    ax.text(
        9.0,
        1.0,
        "one row per request, any time\nanswer in well under a second\nmust be up when asked",
        ha="center",
        va="center",
        fontsize=11,
        color=GREY,
    )
    return save(fig, out, "batch_vs_api.png")


def message(
    ax: Axes, x: float, y: float, title: str, lines: list[tuple[str, str]], color: str
) -> None:
    """An HTTP message: a title, then monospace lines (left) and what each part is (right)."""
    ax.text(x, y, title, ha="left", va="center", fontsize=15, weight="bold", color=color)
    for i, (code, part) in enumerate(lines, start=1):
        ax.text(x, y - i * 0.4, code, ha="left", va="center", fontsize=14, family="monospace")
        ax.text(x + 5.4, y - i * 0.4, part, ha="left", va="center", fontsize=14, color=color)


def draw_rest(out: Path) -> Path:
    """A REST call: the client sends a request (method, path, headers, body), gets a response."""
    fig, ax = canvas(12, 5.0)
    box(ax, 1.15, 2.5, 1.9, 1.5, "client\n(the bank)", ORANGE, size=15, bold=True)
    box(ax, 10.85, 2.5, 1.9, 1.5, "server\nyour API\n+ model", BLUE, size=15, bold=True)
    request = [
        ("POST /predict", "method, path"),
        ("Content-Type: application/json", "headers"),
        ('{"id": "4f1c", "features": {...}}', "body: JSON"),
    ]
    message(ax, 2.5, 4.7, "request", request, ORANGE)
    arrow(ax, (2.2, 2.95), (9.8, 2.95), color=ORANGE)
    arrow(ax, (9.8, 2.05), (2.2, 2.05), color=BLUE)
    response = [
        ("200 OK", "status"),
        ("Content-Type: application/json", "headers"),
        ('{"pred": 0}', "body: JSON"),
    ]
    message(ax, 2.5, 1.6, "response", response, BLUE)
    return save(fig, out, "rest.png")


def draw_architecture(out: Path) -> Path:
    """The game: the customer fans out to every team API; labels come back through feedback."""
    fig, ax = canvas(12, 5.6)
    box(ax, 1.7, 2.8, 2.6, 1.6, "the customer\n(the bank)", ORANGE, size=15, bold=True)
    ax.text(
        1.7, 1.55, "same applicant\nto every team", ha="center", va="top", fontsize=11, color=GREY
    )
    teams = [4.55, 2.8, 1.05]
    for i, y in enumerate(teams, start=1):
        box(ax, 6.3, y, 2.4, 1.1, f"team {i}: API\nPOST /predict", BLUE, size=12)
        box(ax, 9.0, y, 1.8, 1.1, f"team {i}\ndatabase", GREY, size=12)
        arrow(ax, (3.05, 2.8 + (y - 2.8) * 0.25), (5.08, y), color=ORANGE)
        arrow(ax, (7.52, y), (8.08, y))
    ax.text(4.0, 4.75, '{"id", "features"}', ha="center", fontsize=11, color=ORANGE)
    ax.text(4.0, 0.55, '{"pred": 0 or 1}\nwithin 1 s', ha="center", fontsize=11, color=ORANGE)
    box(ax, 11.0, 2.8, 1.7, 2.1, "game server\n\nscores\nleaderboard", GREEN, size=12)
    for y, start in ((4.55, (10.45, 3.88)), (2.8, (10.13, 2.8)), (1.05, (10.45, 1.72))):
        arrow(ax, start, (9.92, y), color=GREEN, dashed=True)
    ax.text(11.0, 4.45, "labels, later:\nGET /api/feedback", ha="center", fontsize=10, color=GREEN)
    ax.text(
        9.0,
        0.15,
        "retrain on what you saw, redeploy while the game runs",
        ha="center",
        fontsize=11,
        color=GREY,
    )
    return save(fig, out, "architecture.png")


def draw_timeline(out: Path) -> Path:
    """The phases of the workshop game file, to scale, with their request rates."""
    from game_server.scenario.gamefile import builtin_game_path, load_game_file

    game = load_game_file(builtin_game_path("workshop"))
    colors = {"warmup": GREEN, "messy": ORANGE, "shift": BLUE, "peak": RED, "drift": GREY}
    total = game.duration / 60
    fig, ax = plt.subplots(figsize=(12, 3.4), dpi=DPI)
    start = 0.0
    for phase in game.phases:
        minutes = phase.duration / 60
        color = colors.get(phase.kind, GREY)
        ax.barh(0, minutes, left=start, height=0.6, color=LIGHT[color], edgecolor=color, lw=2)
        ax.text(
            start + minutes / 2,
            0.05,
            phase.name,
            ha="center",
            va="center",
            fontsize=12,
            weight="bold",
        )
        ax.text(
            start + minutes / 2,
            -0.17,
            f"{minutes:g} min, {phase.rate:g} req/s",
            ha="center",
            va="center",
            fontsize=10,
            color=GREY,
        )
        start += minutes
    ax.set_xlim(0, total)
    ax.set_ylim(-0.5, 0.5)
    ax.set_yticks([])
    ax.set_xlabel("minutes into the game")
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    delay = game.settings.label_delay
    ax.set_title(
        f"{game.settings.name} ({total:g} minutes); labels arrive {delay:g} s after each request",
        fontsize=12,
    )
    fig.tight_layout()
    return save(fig, out, "timeline.png")


def draw_degradation(out: Path) -> Path:
    """Three panels: population shift, changed data collection, changed world (one feature)."""
    rng = np.random.default_rng(SEED)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), dpi=DPI, sharey=False)
    bins = np.linspace(0, 100, 41)

    before = rng.normal(40, 10, 4000)
    ax = axes[0]
    ax.hist(before, bins, alpha=0.55, color=BLUE, label="training")
    ax.hist(rng.normal(28, 8, 4000), bins, alpha=0.55, color=ORANGE, label="now")
    ax.set_title("Population shift\nthe inputs move", fontsize=12)
    ax.set_xlabel("age")

    ax = axes[1]
    ax.hist(before, bins, alpha=0.55, color=BLUE, label="training")
    now = rng.normal(40, 10, 4000)
    now[rng.random(4000) < 0.35] = 0  # a form field became optional: missing coded as 0
    ax.hist(now, bins, alpha=0.55, color=ORANGE, label="now")
    ax.set_title("Changed data collection\nsame people, measured differently", fontsize=12)
    ax.set_xlabel("age (0 = left empty)")

    ax = axes[2]
    x = np.linspace(0, 100, 200)
    ax.plot(x, 1 / (1 + np.exp(-(x - 60) / 8)), color=BLUE, lw=3, label="training")
    ax.plot(x, 1 / (1 + np.exp(-(x - 40) / 8)), color=ORANGE, lw=3, label="now")
    ax.set_title("Changed world\nsame inputs, other outcomes", fontsize=12)
    ax.set_xlabel("loan burden (% of income)")
    ax.set_ylabel("P(default)")
    for ax in axes:
        ax.legend(frameon=False, fontsize=10)
        for side in ("right", "top"):
            ax.spines[side].set_visible(False)
    fig.tight_layout()
    return save(fig, out, "degradation.png")


DRAWINGS = (
    draw_dtap,
    draw_batch_vs_api,
    draw_rest,
    draw_architecture,
    draw_timeline,
    draw_degradation,
)


def main(argv: list[str] | None = None) -> int:
    """Draw every diagram into the output folder and print each file written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for draw in DRAWINGS:
        print(f"figures: wrote {draw(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
