"""Retraining pays, visibly: in the builtin games' last phase ("the world changes") a model
never retrained falls below the baseline, and one retrained on a few hundred revealed
labels the way the demo's careful bot does it gets back above it.

Expected accuracy from the hidden truth p (little noise); the models are the bots' own:
the starter's logistic regression and the careful bot's gradient boosting.
"""

import sys

import numpy as np
import pandas as pd
import pytest
from starter_helpers import STARTER

from game_server.scenario import population
from game_server.scenario.gamefile import builtin_game_path, load_game_file

sys.path.insert(0, str(STARTER))  # the starter is its own project: its `modules` package
from modules.features import clean_frame  # noqa: E402
from modules.train import train_pipeline  # noqa: E402

from game_server.demo.bots import retrain  # noqa: E402 (the bots import the starter's modules)
from game_server.demo.bots.training import careful_classifier  # noqa: E402

LEARN = int(retrain.WINDOW_ROWS * (1 - retrain.CHECK_SHARE))  # what one retraining learns


def expected_accuracy(pred, p) -> float:
    return float(np.mean(np.where(pred == 1, p, 1 - p)))


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    return population.training_data().drop(columns=population.LEAK)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["demo", "workshop"])
def test_never_retrained_below_the_baseline_retrained_above(name, training):
    game = load_game_file(builtin_game_path(name))
    drift = game.phases[-1]
    assert drift.kind == "drift" and drift.drift.active
    rng = np.random.default_rng(11)
    learn, _ = population.draw(LEARN, rng, drift.shift, drift.drift)
    test, p = population.draw(3000, rng, drift.shift, drift.drift)
    baseline = expected_accuracy(np.zeros(len(p)), p)
    starter, meta = train_pipeline(training)
    careful, careful_meta = train_pipeline(training, classifier=careful_classifier())
    weights = np.r_[np.ones(len(training)), np.full(LEARN, retrain.RECENT_WEIGHT)]
    retrained, _ = train_pipeline(
        pd.concat([training, learn.drop(columns=population.LEAK)], ignore_index=True),
        classifier=careful_classifier(),
        sample_weight=weights,
        metadata=careful_meta,
    )
    never = {
        "starter": expected_accuracy(starter.predict(clean_frame(test, meta)), p),
        "careful": expected_accuracy(careful.predict(clean_frame(test, careful_meta)), p),
    }
    after = expected_accuracy(retrained.predict(clean_frame(test, careful_meta)), p)
    oracle = float(np.mean(np.maximum(p, 1 - p)))
    for model, accuracy in never.items():
        assert accuracy < baseline - 0.05, (model, accuracy, baseline)  # clearly below
    assert after > baseline + 0.03, (after, baseline)
    # most of what the drift took from the careful model's reach is won back
    assert after - never["careful"] > 0.5 * (oracle - never["careful"]), (after, oracle, never)
