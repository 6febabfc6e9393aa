"""Helpers shared by the scenario tests: frames from draws, a PSI, expected accuracy."""

import numpy as np
import pandas as pd

from game_server.scenario import population

# A fixed stream secret, for the tests that need the same stream twice or a stable
# statistic; the game itself makes a random one at `init` (test_stream_secret.py).
TEST_SECRET = "5e" * 32

CATEGORIES = [f.name for f in population.FEATURES if f.kind == "category"]
NUMBERS = [f.name for f in population.FEATURES if f.kind != "category"]


def frame_of(applicants) -> pd.DataFrame:
    """Requests as a frame with the training columns (absent keys become missing)."""
    frame = pd.DataFrame([a.features for a in applicants])
    return frame.reindex(columns=list(population.FEATURE_NAMES))


def psi(expected: pd.Series, actual: pd.Series, bins: int = 10) -> float:
    """Population stability index of `actual` against `expected` (deciles or categories)."""
    if pd.api.types.is_numeric_dtype(expected):
        edges = np.unique(np.nanquantile(expected.astype(float), np.linspace(0, 1, bins + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        e = np.histogram(expected.dropna().astype(float), edges)[0] / expected.notna().sum()
        a = np.histogram(actual.dropna().astype(float), edges)[0] / actual.notna().sum()
    else:
        cats = sorted(set(expected.dropna()) | set(actual.dropna()))
        e = expected.value_counts(normalize=True).reindex(cats, fill_value=0).to_numpy()
        a = actual.value_counts(normalize=True).reindex(cats, fill_value=0).to_numpy()
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(((a - e) * np.log(a / e)).sum())


def expected_accuracy(pred, p) -> float:
    """Expected accuracy of predictions when the truth is p(default): no label noise."""
    pred, p = np.asarray(pred), np.asarray(p, dtype=float)
    return float(np.mean(np.where(pred == 1, p, 1 - p)))


def for_trees(frame: pd.DataFrame) -> pd.DataFrame:
    """Categories as pandas categoricals with the training categories (others become NaN)."""
    frame = frame.copy()
    for name in CATEGORIES:
        known = list(population.BY_NAME[name].categories)
        frame[name] = pd.Categorical(frame[name].where(frame[name].isin(known)), categories=known)
    return frame
