"""The generator and the training data: reproducible, realistic, with a leak and a real signal."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scenario_helpers import NUMBERS, TEST_SECRET, expected_accuracy, for_trees, frame_of
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from game_server.cli.main import main
from game_server.scenario import population
from game_server.scenario.gamefile import builtin_game_path, load_game_file
from game_server.scenario.stream import Scenario

ROOT = Path(__file__).resolve().parents[1]
FEATURES = list(population.FEATURE_NAMES)


def generate(tmp_path, name, *args) -> bytes:
    """Run `game-server data generate` and return the CSV's bytes."""
    out = tmp_path / name
    result = CliRunner().invoke(main, ["data", "generate", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return out.read_bytes()


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path):
    first = generate(tmp_path, "a.csv", "--rows", "2000", "--seed", "5")
    assert first == generate(tmp_path, "b.csv", "--rows", "2000", "--seed", "5")
    assert first != generate(tmp_path, "c.csv", "--rows", "2000", "--seed", "6")
    assert first.count(b"\n") == 2001 and b"\r" not in first


def test_committed_training_data_is_what_the_generator_makes(tmp_path):
    assert (ROOT / "data" / "train_data.csv").read_bytes() == generate(tmp_path, "d.csv")


def test_training_data_has_realistic_rates_and_types():
    frame = pd.read_csv(ROOT / "data" / "train_data.csv")
    assert list(frame.columns) == [*FEATURES, population.LEAK, population.LABEL]
    assert 9_000 <= len(frame) <= 11_000
    assert 0.15 <= frame[population.LABEL].mean() <= 0.35
    assert set(frame[population.LABEL].unique()) == {0, 1}
    for feature in population.FEATURES:
        share = frame[feature.name].isna().mean()
        # each declared rate within 3 standard errors (or exactly none)
        tolerance = 3 * math.sqrt(max(feature.missing, 1e-9) * (1 - feature.missing) / len(frame))
        assert abs(share - feature.missing) <= tolerance, feature.name
        values = frame[feature.name].dropna()
        if feature.kind == "category":
            assert set(values) <= set(feature.categories), feature.name
        else:
            assert values.min() >= feature.low and values.max() <= feature.high, feature.name
    assert 0.01 <= frame[FEATURES].isna().any(axis=1).mean() <= 0.4
    # correlations the causal story promises
    assert frame["age"].corr(frame["employment_years"]) > 0.3
    assert frame["age"].corr(frame["credit_history_years"]) > 0.5
    assert np.log(frame["income"]).corr(frame["age"]) > 0.1


def test_clean_requests_are_json_ready_training_distribution_without_leak():
    scenario = Scenario(load_game_file(builtin_game_path("workshop")), TEST_SECRET)
    drawn = [scenario.draw(0, seq) for seq in range(2000)]
    json.dumps([a.features for a in drawn], allow_nan=False)
    for a in drawn:
        assert a.oddities == ()
        assert list(a.features) == FEATURES  # never the label, never the leak
        for name, value in a.features.items():
            feature = population.BY_NAME[name]
            expected = {"int": int, "float": float, "category": str}[feature.kind]
            assert value is None or type(value) is expected, (name, value)
            if value is None:
                assert feature.missing > 0, name
    frame = frame_of(drawn)
    assert frame["income"].isna().mean() == pytest.approx(0.06, abs=0.02)
    assert 0.15 <= np.mean([a.label for a in drawn]) <= 0.35


def _models():
    """Logistic regression on raw features, and gradient boosting."""
    categories = [f.name for f in population.FEATURES if f.kind == "category"]
    linear = make_pipeline(
        make_column_transformer(
            (make_pipeline(SimpleImputer(), StandardScaler()), NUMBERS),
            (
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                categories,
            ),
        ),
        LogisticRegression(max_iter=2000),
    )
    boosted = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    return linear, boosted


def test_boosting_beats_linear_both_beat_baseline_neither_beats_oracle():
    train = population.training_data(8000, seed=11)
    holdout, p = population.draw(10_000, np.random.default_rng(12))
    y, y_test = train[population.LABEL], holdout[population.LABEL].to_numpy()
    linear, boosted = _models()
    linear.fit(train[FEATURES], y)
    boosted.fit(for_trees(train[FEATURES]), y)
    pred_linear = linear.predict(holdout[FEATURES])
    pred_boosted = boosted.predict(for_trees(holdout[FEATURES]))

    acc = {
        "linear": float(np.mean(pred_linear == y_test)),
        "boosted": float(np.mean(pred_boosted == y_test)),
        "baseline": float(np.mean(y_test == int(y.mean() > 0.5))),
        "oracle": float(np.mean((p > 0.5) == y_test)),
    }
    noise = 3 * math.sqrt(0.25 / len(y_test))  # 3 standard errors of an accuracy
    assert acc["oracle"] - acc["baseline"] >= 0.08, acc
    assert acc["linear"] > acc["baseline"] + 0.03, acc
    assert acc["boosted"] > acc["linear"] + 0.005, acc
    assert max(acc["linear"], acc["boosted"]) <= acc["oracle"] + noise, acc
    # the same comparison free of label noise, with the known truth
    assert expected_accuracy(pred_boosted, p) > expected_accuracy(pred_linear, p) + 0.005


def test_the_leak_scores_offline_and_fails_on_requests():
    train = population.training_data(6000, seed=21)
    holdout = population.training_data(4000, seed=22)
    with_leak = [*FEATURES, population.LEAK]
    y = train[population.LABEL]
    leaky = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    leaky.fit(for_trees(train[with_leak]), y)
    offline = np.mean(leaky.predict(for_trees(holdout[with_leak])) == holdout[population.LABEL])
    assert offline >= 0.97

    scenario = Scenario(load_game_file(builtin_game_path("workshop")), TEST_SECRET)
    drawn = [scenario.draw(0, seq) for seq in range(3000)]
    assert all(population.LEAK not in a.features for a in drawn)
    requests = frame_of(drawn)
    requests[population.LEAK] = np.nan  # the column is absent from every request
    labels = np.array([a.label for a in drawn])
    live = np.mean(leaky.predict(for_trees(requests[with_leak])) == labels)
    honest = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    honest.fit(for_trees(train[FEATURES]), y)
    fair = np.mean(honest.predict(for_trees(frame_of(drawn))) == labels)
    assert live < offline - 0.15 and live < fair - 0.05, (offline, live, fair)


def test_data_dictionary_lists_every_column():
    readme = (ROOT / "data" / "README.md").read_text()
    assert population.dictionary_markdown() in readme
    for column in population.COLUMNS:
        assert f"| `{column}` |" in readme
