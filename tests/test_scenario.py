"""The request stream: deterministic, oddities as recorded, a measurable shift and drift."""

import dataclasses

import numpy as np
import pytest
from scenario_helpers import NUMBERS, TEST_SECRET, expected_accuracy, for_trees, frame_of, psi
from sklearn.ensemble import HistGradientBoostingClassifier

from game_server.scenario import oddities, population
from game_server.scenario.gamefile import builtin_game_path, load_game_file
from game_server.scenario.stream import BLOCK, Scenario

FEATURES = list(population.FEATURE_NAMES)


@pytest.fixture(scope="module")
def workshop():
    """The builtin workshop game and a scenario for it."""
    game = load_game_file(builtin_game_path("workshop"))
    return game, Scenario(game, TEST_SECRET)


def with_seed(game, seed):
    """The same game file with another seed."""
    return dataclasses.replace(game, settings=dataclasses.replace(game.settings, seed=seed))


def test_same_seed_same_stream_in_any_order_and_different_seed_differs(workshop):
    game, scenario = workshop
    seqs = [0, 1, BLOCK - 1, BLOCK, 5 * BLOCK + 3, 100_000]
    forward = [scenario.draw(phase, s) for phase in range(5) for s in seqs]
    fresh = Scenario(game, TEST_SECRET)  # a restarted game, drawing in another order
    backward = [fresh.draw(phase, s) for phase in reversed(range(5)) for s in reversed(seqs)]
    assert forward == list(reversed(backward))
    other = Scenario(with_seed(game, game.settings.seed + 1), TEST_SECRET)
    differ = [other.draw(0, s).features != scenario.draw(0, s).features for s in range(50)]
    assert sum(differ) >= 45
    # phases and blocks are independent streams, not copies of each other
    assert scenario.draw(0, 0).features != scenario.draw(1, 0).features
    assert scenario.draw(0, 0).features != scenario.draw(0, BLOCK).features


def test_draw_rejects_unknown_phase_and_negative_seq(workshop):
    _, scenario = workshop
    with pytest.raises(IndexError):
        scenario.draw(5, 0)
    with pytest.raises(IndexError):
        scenario.draw(0, -1)


def test_oracle_and_baseline_points(workshop):
    _, scenario = workshop
    assert scenario.baseline_pred == 0  # defaults are the minority in training
    drawn = [scenario.draw(0, s) for s in range(3000)]
    oracle = np.array([scenario.oracle_expected_points(a) for a in drawn])
    baseline = np.array([scenario.baseline_expected_points(a) for a in drawn])
    p = np.array([a.p_default for a in drawn])
    assert np.allclose(oracle, np.maximum(p, 1 - p)) and np.allclose(baseline, 1 - p)
    labels = np.array([a.label for a in drawn])
    # the stored expectations match what actually happens, within sampling noise
    assert abs(oracle.mean() - np.mean((p > 0.5) == labels)) < 0.03
    assert abs(baseline.mean() - np.mean(labels == 0)) < 0.03
    assert oracle.mean() - baseline.mean() >= 0.08


def _check_oddity(kind: str, clean: dict, odd: dict) -> bool:
    """True when `odd` shows the effect of `kind` compared with the clean features."""
    numbers = {f.name: f for f in population.FEATURES if f.kind != "category"}
    changed = [k for k in clean if k in odd and odd[k] != clean[k]]
    if kind == "missing_field":
        return any(k not in odd for k in clean)
    if kind == "extra_field":
        return any(k not in clean for k in odd)
    if kind == "null_value":
        return any(odd[k] is None and clean[k] is not None for k in changed)
    if kind == "number_as_string":
        return any(k in numbers and isinstance(odd[k], str) for k in changed)
    if kind == "out_of_range":
        return any(
            k in numbers
            and isinstance(odd[k], int | float)
            and not numbers[k].low <= odd[k] <= numbers[k].high
            for k in changed
        )
    cats = {f.name: f.categories for f in population.FEATURES if f.kind == "category"}
    changed = [k for k in changed if k in cats and isinstance(odd[k], str)]
    if kind == "unknown_category":
        return any(odd[k] not in cats[k] and odd[k].lower() not in cats[k] for k in changed)
    assert kind == "category_case"
    return any(odd[k].lower() == clean[k] for k in changed)


def test_messy_phase_oddities_share_and_effects(workshop):
    game, scenario = workshop
    messy = next(i for i, p in enumerate(game.phases) if p.kind == "messy")
    share = game.phases[messy].oddity_share
    # The same phase without oddities gives the clean twin of every request.
    clean_game = dataclasses.replace(
        game,
        phases=tuple(
            dataclasses.replace(p, oddity_share=0.0) if i == messy else p
            for i, p in enumerate(game.phases)
        ),
    )
    twin = Scenario(clean_game, TEST_SECRET)
    n = 3000
    seen = {kind: 0 for kind in oddities.KINDS}
    odd_count = 0
    for seq in range(n):
        a, clean = scenario.draw(messy, seq), twin.draw(messy, seq)
        assert a.label == clean.label and a.p_default == clean.p_default
        assert clean.oddities == ()
        if not a.oddities:
            assert a.features == clean.features
            continue
        odd_count += 1
        for kind in a.oddities:
            seen[kind] += 1
            assert _check_oddity(kind, clean.features, a.features), (kind, a.features)
    assert abs(odd_count / n - share) <= 3 * np.sqrt(share * (1 - share) / n) + 0.01
    assert all(count >= 30 for count in seen.values()), seen


def test_shift_moves_the_shifted_features_only(workshop):
    game, scenario = workshop
    shift = next(i for i, p in enumerate(game.phases) if p.kind == "shift")
    train = scenario.training_frame()
    shifted = frame_of([scenario.draw(shift, s) for s in range(4000)])
    psis = {name: psi(train[name], shifted[name]) for name in FEATURES}
    for name in ("age", "loan_amount", "region"):  # what the shift declares
        assert psis[name] > 0.2, psis
    # features the generator draws independently of age, loan and region
    for name in ("debt_to_income", "late_payments", "num_credit_lines"):
        assert psis[name] < 0.1, psis
    assert (shifted["region"] == "islands").mean() == pytest.approx(0.2, abs=0.03)
    # and a clean warm-up sample is stable everywhere
    warm = frame_of([scenario.draw(0, s) for s in range(4000)])
    assert max(psi(train[name], warm[name]) for name in FEATURES) < 0.1


def test_drift_lowers_the_accuracy_of_a_model_trained_on_the_original_data(workshop):
    game, scenario = workshop
    train = scenario.training_frame()
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    model.fit(for_trees(train[FEATURES]), train[population.LABEL])
    peak = next(i for i, p in enumerate(game.phases) if p.kind == "peak")
    drift = next(i for i, p in enumerate(game.phases) if p.kind == "drift")
    # same population (the shift persists), different truth
    assert game.phases[peak].shift == game.phases[drift].shift
    assert not game.phases[peak].drift.active and game.phases[drift].drift.active
    n = 4000
    before = [scenario.draw(peak, s) for s in range(n)]
    after = [scenario.draw(drift, s) for s in range(n)]
    acc_before = expected_accuracy(
        model.predict(for_trees(frame_of(before))), [a.p_default for a in before]
    )
    acc_after = expected_accuracy(
        model.predict(for_trees(frame_of(after))), [a.p_default for a in after]
    )
    assert acc_before - acc_after >= 0.04, (acc_before, acc_after)
    # while the oracle (which knows the new world) stays as good
    oracle_after = np.mean([scenario.oracle_expected_points(a) for a in after])
    assert oracle_after - acc_after >= 0.05


def test_numbers_stay_numbers_in_clean_phases(workshop):
    game, scenario = workshop
    for phase, p in enumerate(game.phases):
        for seq in range(300):
            a = scenario.draw(phase, seq)
            if a.oddities:
                continue
            for name in NUMBERS:
                value = a.features[name]
                assert value is None or isinstance(value, int | float), (p.name, name, value)
