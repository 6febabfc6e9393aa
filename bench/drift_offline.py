"""The drift phase offline: what retraining can win back, in seconds and without a game.

A fast first look at a game file's phases, used to choose the drift's strength before the
demo runs of `bench/drift_bench.py` confirm it. Per phase it draws applicants from the
scenario's own generator (that phase's shift and drift), and reports the expected accuracy
(from the hidden truth p, so with little noise) of: the `starter` bot's model (the
notebook's logistic regression, never retrained), the `careful` bot's gradient boosting
before any retraining, the same after one retraining the way the careful bot does it
(bots/retrain.py: the training data plus the phase's newest labelled requests, weighted
up), the majority-class baseline and the oracle. The retrained model is the careful bot's
steady state in a long phase; a short phase gives it fewer labels (see drift_bench.py).

    .venv/bin/python bench/drift_offline.py --game workshop --seeds 1 2 3
"""

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "participant_starter"))

from modules.features import clean_frame  # noqa: E402 (the starter's package, as a bot's)
from modules.train import LEAK, train_pipeline  # noqa: E402

from game_server.demo.bots import retrain  # noqa: E402 (its constants: the careful habit)
from game_server.demo.bots.training import careful_classifier  # noqa: E402
from game_server.scenario import gamefile, population  # noqa: E402

TEST_ROWS = 4000  # applicants per phase the models are scored on
LEARN_ROWS = int(retrain.WINDOW_ROWS * (1 - retrain.CHECK_SHARE))  # what a retraining learns


def expected_accuracy(pred: np.ndarray, p: np.ndarray) -> float:
    """Expected share of correct answers given the true probabilities of default."""
    return float(np.mean(np.where(pred == 1, p, 1.0 - p)))


def play(game: gamefile.GameFile) -> list[dict]:
    """Each phase's expected accuracy of the five players, in the game's order."""
    settings = game.settings
    training = population.training_data(settings.data_rows, settings.data_seed).drop(columns=LEAK)
    starter, meta = train_pipeline(training)
    careful, careful_meta = train_pipeline(training, classifier=careful_classifier())
    baseline_pred = int(training[population.LABEL].mean() > 0.5)
    rows = []
    for index, phase in enumerate(game.phases):
        rng = np.random.default_rng([settings.seed, index])
        learn, _ = population.draw(LEARN_ROWS, rng, phase.shift, phase.drift)
        test, p = population.draw(TEST_ROWS, rng, phase.shift, phase.drift)
        weights = np.r_[np.ones(len(training)), np.full(LEARN_ROWS, retrain.RECENT_WEIGHT)]
        retrained, _ = train_pipeline(
            pd.concat([training, learn.drop(columns=LEAK)], ignore_index=True),
            classifier=careful_classifier(),
            sample_weight=weights,
            metadata=careful_meta,
        )
        x, x_careful = clean_frame(test, meta), clean_frame(test, careful_meta)
        rows.append(
            {
                "phase": phase.name,
                "starter": expected_accuracy(starter.predict(x), p),
                "careful": expected_accuracy(careful.predict(x_careful), p),
                "retrained": expected_accuracy(retrained.predict(x_careful), p),
                "baseline": expected_accuracy(np.full(len(p), baseline_pred), p),
                "oracle": float(np.mean(np.maximum(p, 1 - p))),
            }
        )
    return rows


def main() -> None:
    """Print each seed's table, then the mean over seeds."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--game", default="demo", help="a builtin game or a game file")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    base = gamefile.load_game_file(gamefile.game_path(args.game))
    tables = []
    for seed in args.seeds:
        game = dataclasses.replace(base, settings=dataclasses.replace(base.settings, seed=seed))
        tables.append(pd.DataFrame(play(game)).set_index("phase"))
        print(f"game={args.game} seed={seed}\n{tables[-1].round(3)}\n", flush=True)
    mean = pd.concat(tables).groupby(level=0, sort=False).mean()
    print(f"game={args.game} mean over seeds {args.seeds}\n{mean.round(3)}")


if __name__ == "__main__":
    main()
