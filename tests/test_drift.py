"""The drift statistics: Evidently's size-dependent choice, PSI, and messy values."""

import numpy as np
import pandas as pd
import pytest

from game_server.web import drift

RNG = np.random.default_rng(5)


def normal(n, shift=0.0):
    """n draws of N(shift, 1)."""
    return RNG.normal(shift, 1.0, size=n)


def test_small_numeric_reference_uses_ks():
    """≤1000 rows: K-S p-value, drift when p < 0.05."""
    ref = pd.Series(normal(800))
    same = drift.compare(ref, list(normal(500)))
    moved = drift.compare(ref, list(normal(500, 1.0)))
    assert same["method"] == moved["method"] == "K-S p-value"
    assert same["threshold"] == 0.05
    assert same["drifted"] is False and same["statistic"] > 0.05
    assert moved["drifted"] is True and moved["statistic"] < 0.05


def test_large_numeric_reference_uses_normed_wasserstein():
    """>1000 rows: Wasserstein distance / std of the reference, drift at 0.1."""
    ref = pd.Series(normal(5000) * 10 + 50)
    moved = drift.compare(ref, list(normal(1000) * 10 + 55))  # half a std
    same = drift.compare(ref, list(normal(1000) * 10 + 50))
    assert moved["method"] == "Wasserstein (normed)" and moved["threshold"] == 0.1
    assert moved["statistic"] == pytest.approx(0.5, abs=0.1) and moved["drifted"] is True
    assert same["statistic"] < 0.1 and same["drifted"] is False


def test_categorical_tests_by_size():
    """Small: chi-squared (Z-test for binary); large: Jensen-Shannon distance."""
    three = pd.Series(list("abc") * 100)
    assert drift.compare(three, list("ab") * 50)["method"] == "chi-squared p-value"
    assert drift.compare(three, list("ab") * 50)["drifted"] is True
    assert drift.compare(three, list("abc") * 30)["drifted"] is False
    binary = pd.Series(list("ab") * 100)
    z = drift.compare(binary, list("ab") * 50)
    assert z["method"] == "Z-test p-value" and z["drifted"] is False
    assert drift.compare(binary, ["a"] * 90 + ["b"] * 10)["drifted"] is True
    large = pd.Series(list("abcd") * 1000)
    js = drift.compare(large, list("abcd") * 50)
    assert js["method"] == "Jensen-Shannon" and js["statistic"] < 0.05 and not js["drifted"]
    assert drift.compare(large, ["a"] * 200)["drifted"] is True


def test_few_distinct_numbers_are_categorical():
    """A numeric column with 5 distinct values or fewer is treated as categorical."""
    ref = pd.Series([0, 1, 2, 3, 4] * 300)
    assert drift.compare(ref, [0, 1, 2])["kind"] == "categorical"
    assert drift.compare(pd.Series(range(1200)), [1, 2])["kind"] == "numeric"


def test_psi():
    """PSI is 0 for the same shares and grows with the shift."""
    counts = np.array([10.0, 20, 30, 40])
    assert drift.psi(counts, counts * 3) == pytest.approx(0.0)
    small = drift.psi(counts, np.array([12.0, 20, 30, 38]))
    large = drift.psi(counts, np.array([40.0, 30, 20, 10]))
    assert 0 < small < 0.05 < 0.5 < large
    assert drift.psi(counts, np.zeros(4)) is None


def test_messy_values_never_crash():
    """Strings are coerced, nulls are missing, the rest is counted invalid or unknown."""
    ref = pd.Series([float(x) for x in range(100)] * 20)
    messy = [1, "2", "2.5", None, float("nan"), "abc", [1], {"a": 1}, True, float("inf"), 10**9]
    r = drift.compare(ref, messy)
    assert (r["missing_current"], r["invalid_current"]) == (2, 5)
    assert r["statistic"] is not None and r["current"][-1] > 0  # 10**9: the overflow bin
    cats = pd.Series(["north", "south"] * 600)
    c = drift.compare(cats, ["north", "Atlantis", None, 3, ["x"]])
    assert c["bins"] == ["north", "south", drift.OTHER]
    assert (c["missing_current"], c["invalid_current"]) == (1, 2)
    empty = drift.compare(ref, [None, "x"])
    assert empty["statistic"] is None and empty["drifted"] is None


def test_absurd_values_do_not_decide_the_distance():
    """One value of 10**12 among 1000 clean ones does not make a feature drift."""
    ref = pd.Series(normal(5000) * 10 + 50)
    current = list(normal(999) * 10 + 50) + [10**12]
    assert drift.compare(ref, current)["drifted"] is False


def test_bins_and_shares():
    """Reference and current shares sum to 1 over the same bins; small integers per value."""
    ref = pd.Series([12, 24, 36, 48, 60, 72] * 200)
    r = drift.compare(ref, [12, 24, 99])
    assert r["bins"] == ["12", "24", "36", "48", "60", "72", drift.OTHER]
    assert sum(r["reference"]) == pytest.approx(1, abs=1e-3)
    assert sum(r["current"]) == pytest.approx(1, abs=1e-3)
    wide = drift.compare(pd.Series(normal(2000)), list(normal(100)))
    assert len(wide["bins"]) == drift.NUMERIC_BINS + 2
    assert wide["bins"][0].startswith("<") and wide["bins"][-1].startswith(">")


def test_compare_frame_handles_missing_features_and_bad_rows():
    """A row that is not a dict, or lacks a feature, counts as missing."""
    frame = pd.DataFrame({"age": normal(1500) * 10 + 40, "region": ["n", "s", "e"] * 500})
    out = drift.compare_frame(frame, [{"age": 30}, "garbage", {"region": "n"}], ["age", "region"])
    assert [f["feature"] for f in out] == ["age", "region"]
    assert out[0]["missing_current"] == 2 and out[1]["missing_current"] == 2


def _requests(n: int, seed: int, shift=None) -> list[dict]:
    """n applicants as the customer sends them (missing values as null)."""
    from game_server.scenario import population

    frame, _ = population.draw(n, np.random.default_rng(seed), shift or population.Shift())
    features = frame[list(population.FEATURE_NAMES)].astype(object)
    return features.where(features.notna(), None).to_dict("records")


@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15])
def test_flags_mean_drift_clean_warmup_none_shift_the_shifted(seed):
    """200 clean requests flag no feature; the workshop game's shift flags what it moves."""
    from game_server.scenario import population
    from game_server.scenario.gamefile import builtin_game_path, load_game_file

    train = population.training_data()
    features = list(population.FEATURE_NAMES)
    clean = drift.compare_frame(train, _requests(200, seed), features)
    assert [f["feature"] for f in clean if f["drifted"]] == []
    game = load_game_file(builtin_game_path("workshop"))
    shift = next(p.shift for p in game.phases if p.kind == "shift")
    moved = {
        f["feature"]
        for f in drift.compare_frame(train, _requests(200, seed, shift), features)
        if f["drifted"]
    }
    assert {"age", "loan_amount", "region"} <= moved


def test_too_few_values_never_flag():
    """Under MIN_SAMPLE usable values the statistic is shown but no drift is flagged."""
    ref = pd.Series(normal(5000))
    few = drift.compare(ref, list(normal(drift.MIN_SAMPLE - 1, 3.0)))
    enough = drift.compare(ref, list(normal(drift.MIN_SAMPLE, 3.0)))
    assert few["statistic"] > 1 and few["drifted"] is False
    assert enough["drifted"] is True


def test_bonferroni_divides_alpha_by_the_features_compared():
    """A p-value between 0.05/14 and 0.05 flags one feature alone, not one of 14."""
    ref = pd.Series(list("ab") * 50)
    cur = ["a"] * 66 + ["b"] * 34  # Z-test p ~ 0.02
    alone, among = drift.compare(ref, cur), drift.compare(ref, cur, tests=14)
    assert 0.05 / 14 < alone["p_value"] < 0.05
    assert alone["drifted"] is True and among["drifted"] is False
