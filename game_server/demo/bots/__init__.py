"""The demo's bot teams: realistic kinds of team, every one serving the participant starter.

Each bot is a separate process (`python -m game_server.demo.bots.worker serve ...`) running the
starter's own `main.py` with a model trained by the starter's own `modules/train.py`
(the notebook's code). The variants differ only where real teams differ: the model they
trained, the server they run, whether they retrain from feedback, whether they stay up.
At the starter's exercise level they run the same complete code (the exercises'
solutions) and those with the starter's model begin with the leak (fleet.py).
"""

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
STARTER_DIR = REPO / "participant_starter"  # the starter, as each team gets it
TRAIN_CSV = REPO / "data" / "train_data.csv"


@dataclass(frozen=True)
class Variant:
    """One kind of team."""

    name: str
    summary: str  # one line, printed when the demo starts
    model: str  # the model it trains: "starter", "careful" or "leaky" (bots/training.py)
    server: str = "waitress"  # "waitress" (the starter's main.py) or "devserver" (Flask's)
    request_cost: float = 0.0  # seconds of extra work per request: a heavier model
    retrain: bool = False  # pulls feedback and retrains during the game (bots/retrain.py)
    flaky: bool = False  # the demo stops its API for a while, then starts it again


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "starter",
            "the starter as a participant gets it: notebook model, waitress",
            model="starter",
        ),
        Variant(
            "careful",
            "gradient boosting, the starter's input cleaning, retrains from feedback",
            model="careful",
            retrain=True,
        ),
        Variant(
            "leaky",
            "trained WITH the leak column collection_calls: near-perfect offline, not live",
            model="leaky",
        ),
        Variant(
            "devserver",
            "Flask's development server, single-threaded, ~50 ms per request (a heavy model)",
            model="starter",
            server="devserver",
            request_cost=0.05,
        ),
        Variant(
            "flaky",
            "the starter, but its API goes down for a while in mid-game and comes back",
            model="starter",
            flaky=True,
        ),
    )
}


def team_plan(count: int) -> list[tuple[str, Variant]]:
    """`count` bot teams cycling through the variants: starter, careful, ..., starter-2, ..."""
    order = list(VARIANTS.values())
    plan = []
    for i in range(count):
        variant = order[i % len(order)]
        round_ = i // len(order) + 1
        plan.append((variant.name if round_ == 1 else f"{variant.name}-{round_}", variant))
    return plan


def missing_parts() -> str | None:
    """Why the bots cannot run from this installation (a one-line reason), or None."""
    for path in (STARTER_DIR / "main.py", TRAIN_CSV):
        if not path.is_file():
            return f"{path} is missing: the demo runs from a checkout of the whole kit"
    return None
