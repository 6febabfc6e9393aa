"""Feature drift: recent requests against the training data, one feature at a time.

Pure functions (no database, no Flask). The test follows Evidently's size-dependent
default so the numbers match what a participant would see in that tool:

- reference of at most 1000 rows: a statistical test, drift when p < 0.05 --
  Kolmogorov-Smirnov for numeric features with more than 5 distinct values,
  a Z-test of proportions for binary ones, chi-squared for other categorical ones;
- larger reference: a distance, drift when it reaches 0.1 -- the Wasserstein distance
  divided by the reference's standard deviation for numeric features, the Jensen-Shannon
  distance for categorical ones.

Two guards of our own keep a flag meaning drift: with 200 clean requests the distance alone
flagged 1 to 5 of the 14 features (sampling noise), so a feature drifts only when it also
has at least `MIN_SAMPLE` usable values and the same test's p-value is below `ALPHA`
divided by the number of features compared (Bonferroni: the chance of any false flag in a
clean window stays under 5 %).

PSI is computed too, as the number most people know. Values in requests may be anything
(messy input): numbers as strings are coerced, `null`s count as missing, anything that
cannot be read counts as invalid; unknown categories get their own bin. Nothing raises.
"""

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

SMALL_REFERENCE = 1000  # at most this many reference rows: a test with a p-value
P_THRESHOLD = 0.05  # ALPHA: for the whole set of features compared, not each one
DISTANCE_THRESHOLD = 0.1
MIN_SAMPLE = 100  # fewer usable request values than this: never a drift flag
NUMERIC_MIN_UNIQUE = 6  # with 5 distinct values or fewer a numeric feature is categorical
NUMERIC_BINS = 20
PSI_BINS = 10
DISCRETE_MAX = 25  # whole numbers with at most this many values get one bar per value
EPS = 1e-4  # share given to an empty bin (PSI and Jensen-Shannon)
OTHER = "(unknown)"  # categories never seen in the reference


def is_numeric(reference: pd.Series) -> bool:
    """Whether a reference column is treated as numeric (numbers, more than 5 values)."""
    values = pd.to_numeric(reference.dropna(), errors="coerce").dropna()
    if len(values) < len(reference.dropna()) or reference.dtype == object:
        return False
    return values.nunique() >= NUMERIC_MIN_UNIQUE


def coerce_numeric(values: Iterable) -> tuple[np.ndarray, int, int]:
    """Finite floats from request values; also the counts of missing and invalid ones."""
    out, missing, invalid = [], 0, 0
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            missing += 1
            continue
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            invalid += 1
            continue
        try:
            x = float(v)
        except (TypeError, ValueError):
            invalid += 1
            continue
        if math.isfinite(x):
            out.append(x)
        else:
            invalid += 1
    return np.asarray(out, dtype=float), missing, invalid


def coerce_category(values: Iterable, known: Sequence[str]) -> tuple[list[str], int, int]:
    """Category labels from request values (unknown ones as OTHER); missing and invalid counts."""
    known_set = set(known)
    out, missing, invalid = [], 0, 0
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            missing += 1
        elif isinstance(v, str):
            out.append(v if v in known_set else OTHER)
        elif isinstance(v, bool | int | float) and str(v) in known_set:
            out.append(str(v))  # a numeric category (own data) sent as a number
        else:
            invalid += 1
    return out, missing, invalid


def shares(counts: np.ndarray) -> np.ndarray:
    """Counts as shares of their total (zeros when empty)."""
    total = counts.sum()
    return counts / total if total else np.zeros_like(counts, dtype=float)


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float | None:
    """Population stability index of two binnings of the same bins; None when one is empty."""
    if ref_counts.sum() == 0 or cur_counts.sum() == 0:
        return None
    r = np.clip(shares(ref_counts), EPS, None)
    c = np.clip(shares(cur_counts), EPS, None)
    return float(np.sum((c - r) * np.log(c / r)))


def psi_numeric(ref: np.ndarray, cur: np.ndarray) -> float | None:
    """PSI over the reference's deciles (open-ended first and last bins)."""
    if len(ref) == 0 or len(cur) == 0:
        return None
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, PSI_BINS + 1))[1:-1])
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    return psi(ref_counts, cur_counts)


def numeric_bins(ref: np.ndarray, cur: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Bars per value for small whole numbers (a loan term, a count), else equal-width bins
    over the reference's 1st..99th percentile plus under/overflow bins."""
    values = np.unique(ref)
    if len(values) <= DISCRETE_MAX and np.all(values == np.round(values)):
        labels = [_num(v) for v in values] + [OTHER]
        index = {v: i for i, v in enumerate(values)}

        def per_value(x: np.ndarray) -> np.ndarray:
            idx = [index.get(v, len(values)) for v in x]
            return np.bincount(np.asarray(idx, dtype=int), minlength=len(labels)).astype(float)

        ref_counts, cur_counts = per_value(ref), per_value(cur)
        if cur_counts[-1] == 0:  # no unseen value: no "(unknown)" bar
            return labels[:-1], ref_counts[:-1], cur_counts[:-1]
        return labels, ref_counts, cur_counts
    lo, hi = (float(x) for x in np.quantile(ref, [0.01, 0.99])) if len(ref) else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, NUMERIC_BINS + 1)
    labels = [f"< {_num(lo)}"]
    labels += [f"{_num(a)}–{_num(b)}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    labels.append(f"> {_num(hi)}")

    def count(x: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(edges, x, side="right")  # 0: below lo; len(edges): above hi
        idx = np.where(x == hi, len(edges) - 1, idx)  # hi itself is inside the last bin
        return np.bincount(idx, minlength=len(edges) + 1).astype(float)

    return labels, count(ref), count(cur)


def _num(x: float) -> str:
    """A bin edge, short."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def numeric_statistic(ref: np.ndarray, cur: np.ndarray, n_reference: int, tests: int = 1) -> dict:
    """The drift method, statistic, threshold and p-value for a numeric feature."""
    alpha = P_THRESHOLD / tests
    p = float(stats.ks_2samp(ref, cur).pvalue)
    if n_reference <= SMALL_REFERENCE:
        return {
            "method": "K-S p-value",
            "statistic": p,
            "threshold": alpha,
            "p_value": p,
            "drifted": p < alpha,
        }
    # Absurd values (messy input: an age of 10**6) would decide the distance alone; a value
    # far outside the reference's range counts as if it sat one range-width beyond it.
    lo, hi = float(ref.min()), float(ref.max())
    cur = np.clip(cur, lo - (hi - lo), hi + (hi - lo))
    d = float(stats.wasserstein_distance(ref, cur)) / max(float(np.std(ref)), 0.001)
    return {
        "method": "Wasserstein (normed)",
        "statistic": d,
        "threshold": DISTANCE_THRESHOLD,
        "p_value": p,
        "alpha": alpha,
        "drifted": d >= DISTANCE_THRESHOLD and p < alpha,
    }


def categorical_statistic(
    ref_counts: np.ndarray, cur_counts: np.ndarray, n_reference: int, tests: int = 1
) -> dict:
    """The drift method, statistic, threshold and p-value for a categorical feature."""
    alpha = P_THRESHOLD / tests
    if np.count_nonzero(ref_counts) <= 2 and np.count_nonzero(cur_counts + ref_counts) <= 2:
        p, method = _z_test(ref_counts, cur_counts), "Z-test p-value"
    else:
        expected = np.clip(shares(ref_counts), EPS, None)
        expected = expected / expected.sum() * cur_counts.sum()
        p, method = float(stats.chisquare(cur_counts, expected).pvalue), "chi-squared p-value"
    if n_reference <= SMALL_REFERENCE:
        return {
            "method": method,
            "statistic": p,
            "threshold": alpha,
            "p_value": p,
            "drifted": p < alpha,
        }
    r = np.clip(shares(ref_counts), EPS, None)
    c = np.clip(shares(cur_counts), EPS, None)
    d = float(distance.jensenshannon(r, c))
    return {
        "method": "Jensen-Shannon",
        "statistic": d,
        "threshold": DISTANCE_THRESHOLD,
        "p_value": p,
        "alpha": alpha,
        "drifted": d >= DISTANCE_THRESHOLD and p < alpha,
    }


def _z_test(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Two-proportion Z-test on the first of (at most) two categories; the p-value."""
    i = int(np.flatnonzero(ref_counts + cur_counts)[0])
    n1, n2 = ref_counts.sum(), cur_counts.sum()
    p1, p2 = ref_counts[i] / n1, cur_counts[i] / n2
    pooled = (ref_counts[i] + cur_counts[i]) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0 if p1 == p2 else 0.0
    return float(2 * stats.norm.sf(abs(p1 - p2) / se))


def compare(reference: pd.Series, current: Sequence, tests: int = 1) -> dict:
    """One feature's drift report: bins and shares of both, statistic, threshold, PSI.

    `reference` is the training column (NaN for missing), `current` the raw values the
    requests carried, `tests` how many features are compared together (Bonferroni). With
    no usable current value the statistic is None; with fewer than MIN_SAMPLE it is shown
    but never flagged.
    """
    n_ref_missing = int(reference.isna().sum())
    ref_valid = reference.dropna()
    report: dict[str, Any] = {
        "n_reference": int(len(reference)),
        "n_current": len(current),
        "missing_reference": n_ref_missing / len(reference) if len(reference) else 0.0,
    }
    if is_numeric(reference):
        ref = ref_valid.to_numpy(dtype=float)
        cur, missing, invalid = coerce_numeric(current)
        labels, ref_counts, cur_counts = numeric_bins(ref, cur)
        report["kind"] = "numeric"
        report["psi"] = psi_numeric(ref, cur)
        result = numeric_statistic(ref, cur, len(ref), tests) if len(cur) and len(ref) else None
        usable = len(cur)
    else:
        ref_labels = ref_valid.astype(str)
        known = sorted(ref_labels.unique())
        cur_labels, missing, invalid = coerce_category(current, known)
        labels = known + ([OTHER] if OTHER in cur_labels else [])
        ref_counts = ref_labels.value_counts().reindex(labels, fill_value=0).to_numpy(float)
        cur_counts = pd.Series(cur_labels, dtype=object).value_counts()
        cur_counts = cur_counts.reindex(labels, fill_value=0).to_numpy(float)
        report["kind"] = "categorical"
        report["psi"] = psi(ref_counts, cur_counts)
        if len(cur_labels) and len(ref_labels):
            result = categorical_statistic(ref_counts, cur_counts, len(ref_labels), tests)
        else:
            result = None
        usable = len(cur_labels)
    if result is not None and usable < MIN_SAMPLE:
        result["drifted"] = False  # too few values to tell drift from chance
    report.update(result or {"method": None, "statistic": None, "threshold": None, "drifted": None})
    report.update(
        missing_current=missing,
        invalid_current=invalid,
        bins=labels,
        reference=[round(float(x), 5) for x in shares(ref_counts)],
        current=[round(float(x), 5) for x in shares(cur_counts)],
    )
    for key in ("statistic", "psi"):
        if report[key] is not None:
            report[key] = round(report[key], 5)
    for key in ("p_value", "alpha"):  # tiny numbers: four significant digits
        if report.get(key) is not None:
            report[key] = float(f"{report[key]:.4g}")
    return report


def compare_frame(
    reference: pd.DataFrame, rows: Sequence[dict], features: Sequence[str]
) -> list[dict]:
    """Every feature's report, from the training frame and the requests' feature dicts."""
    out = []
    for name in features:
        current = [r.get(name) if isinstance(r, dict) else None for r in rows]
        out.append({"feature": name, **compare(reference[name], current, len(features))})
    return out
