"""The seeded generator of loan applicants and the hidden truth `p(default | x)`.

The population is a fixed causal story (age drives employment, income, home and credit
history; income and purpose drive the loan; the bank prices the loan from the risk it
sees). Only the random draws depend on the seed. A `Shift` moves who applies (population
shift), a `Drift` changes how the features relate to default (concept drift).
"""

from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

LABEL = "default"
LEAK = "collection_calls"  # known only after the outcome: never in a request
DEFAULT_DATA_SEED = 20240611
DEFAULT_ROWS = 10_000

EMPLOYMENT = ("employed", "self_employed", "unemployed", "retired", "student")
HOME = ("rent", "mortgage", "own", "other")
REGIONS = ("north", "south", "east", "west", "central")
PURPOSES = ("car", "home_improvement", "debt_consolidation", "education", "business", "medical")
TERMS = (12, 24, 36, 48, 60, 72)


@dataclass(frozen=True)
class Feature:
    """One column of the data dictionary."""

    name: str
    kind: str  # "int", "float" or "category"
    unit: str
    low: float | None  # the valid range of a number (inclusive)
    high: float | None
    categories: tuple[str, ...]
    missing: float  # share of missing values, in training data and in clean requests
    meaning: str


FEATURES: tuple[Feature, ...] = (
    Feature("age", "int", "years", 18, 80, (), 0.0, "age of the applicant"),
    Feature("income", "int", "EUR per year", 5_000, 400_000, (), 0.06, "gross yearly income"),
    Feature("employment_type", "category", "", None, None, EMPLOYMENT, 0.0, "current work"),
    Feature(
        "employment_years",
        "float",
        "years",
        0,
        62,
        (),
        0.08,
        "years in the current job (or, for the retired, the last one)",
    ),
    Feature("home_ownership", "category", "", None, None, HOME, 0.02, "where the applicant lives"),
    Feature("region", "category", "", None, None, REGIONS, 0.0, "region of the bank branch"),
    Feature("loan_purpose", "category", "", None, None, PURPOSES, 0.0, "what the loan is for"),
    Feature("loan_amount", "int", "EUR", 500, 250_000, (), 0.0, "amount asked for"),
    Feature("loan_term", "int", "months", 12, 72, (), 0.0, "12, 24, 36, 48, 60 or 72 months"),
    Feature("interest_rate", "float", "% per year", 1.5, 25, (), 0.0, "rate the bank offers"),
    Feature(
        "debt_to_income",
        "float",
        "ratio",
        0,
        1.5,
        (),
        0.0,
        "existing monthly debt payments divided by monthly income",
    ),
    Feature(
        "credit_history_years",
        "float",
        "years",
        0,
        62,
        (),
        0.04,
        "years since the first credit account",
    ),
    Feature("num_credit_lines", "int", "count", 0, 40, (), 0.0, "open credit accounts"),
    Feature(
        "late_payments", "int", "count", 0, 30, (), 0.0, "payments 30+ days late, last 2 years"
    ),
)
FEATURE_NAMES = tuple(f.name for f in FEATURES)
BY_NAME = {f.name: f for f in FEATURES}
COLUMNS = (*FEATURE_NAMES, LEAK, LABEL)


@dataclass(frozen=True)
class Shift:
    """Who applies changes (population shift); the defaults change nothing."""

    age_delta: float = 0.0  # years added to the mean age (the spread is kept)
    loan_factor: float = 1.0  # multiplies every loan amount
    new_region: str = ""  # a region never seen in training ...
    new_region_share: float = 0.0  # ... and the share of applicants from it

    @property
    def active(self) -> bool:
        """True when this shift changes anything."""
        return self != Shift()


@dataclass(frozen=True)
class Drift:
    """How features relate to default changes (concept drift); the defaults change nothing."""

    region: str = ""  # a regional crisis: this region's applicants ...
    region_logit: float = 0.0  # ... get this added to their log-odds of default
    employment: str = ""  # an employment type hit by the change ...
    employment_logit: float = 0.0  # ... and its added log-odds
    burden_weight: float = 1.0  # multiplies the effect of the loan's payment burden
    history_weight: float = 1.0  # multiplies the effect of past late payments

    @property
    def active(self) -> bool:
        """True when this drift changes anything."""
        return self != Drift()


def _pick(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category index per row from per-row probabilities (rows sum to 1)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random((probs.shape[0], 1))
    return np.asarray(np.minimum((u > cum).sum(axis=1), probs.shape[1] - 1))


def _annuity(amount: np.ndarray, rate_pct: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Monthly payment of a loan repaid in equal instalments."""
    r = rate_pct / 1200.0
    return np.asarray(amount * r / (1.0 - (1.0 + r) ** (-months)))


def sample_applicants(n: int, rng: np.random.Generator, shift: Shift = Shift()) -> pd.DataFrame:
    """Draw `n` complete applicants (no missing values yet), vectorised.

    The draws happen in a fixed order (the seeded data depends on it): who they are, where,
    what they earn and own, what they borrow, their credit record, then the bank's rate.
    """
    age, emp, emp_years = _age_and_work(n, rng, shift)
    span = age - 18
    # A hidden thriftiness drives late payments, debt and credit lines, never default directly.
    thrift = rng.normal(0, 1, n)
    region, regions = _regions(n, rng, shift)
    log_income = (
        10.15
        + 0.018 * np.minimum(span, 30)
        + 0.015 * np.minimum(emp_years, 20)
        + np.array([0.0, 0.12, -1.0, -0.3, -1.1])[emp]
        + np.array([0.0, -0.12, -0.05, 0.05, 0.18])[region]
        + rng.normal(0, 0.38, n)
    )
    income = np.clip(np.round(np.exp(log_income), -2), 5_000, 400_000)
    home = _home(n, rng, span, log_income)
    purpose, amount, term_idx = _loan(n, rng, shift, age, emp, home, log_income)
    history = np.round(span * rng.beta(3.0, 1.5, n), 1)
    late = np.minimum(rng.poisson(np.exp(-1.4 - 0.75 * thrift)), 30)
    dti = np.clip(rng.beta(2.0, 6.0, n) + 0.05 * np.maximum(-thrift, 0), 0, 1.5).round(3)
    lines = np.minimum(rng.poisson(np.exp(1.0 + 0.2 * thrift)), 40)
    # The bank prices the loan from what it sees (so the rate is a risk signal itself).
    rate = 4.0 + 0.9 * np.log1p(late) + 5.0 * dti + 0.25 * term_idx + rng.normal(0, 1.2, n)
    return pd.DataFrame(
        {
            "age": age.astype(int),
            "income": income.astype(int),
            "employment_type": np.array(EMPLOYMENT, dtype=object)[emp],
            "employment_years": emp_years,
            "home_ownership": np.array(HOME, dtype=object)[home],
            "region": regions,
            "loan_purpose": np.array(PURPOSES, dtype=object)[purpose],
            "loan_amount": amount.astype(int),
            "loan_term": np.array(TERMS)[term_idx].astype(int),
            "interest_rate": np.clip(rate, 1.5, 25).round(2),
            "debt_to_income": dti,
            "credit_history_years": history,
            "num_credit_lines": lines.astype(int),
            "late_payments": late.astype(int),
        }
    )


def _age_and_work(
    n: int, rng: np.random.Generator, shift: Shift
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Age, employment type (index into EMPLOYMENT) and years employed."""
    # Age: 18 plus a gamma; a shift moves the mean by `age_delta` years, keeping the shape.
    scale = max(8.5 + shift.age_delta / 2.6, 1.0)
    age = np.clip(np.round(18 + rng.gamma(2.6, scale, n)), 18, 80)
    span = age - 18
    # Employment depends on age: students are young, the retired are old.
    student = np.where(age < 26, 0.35 * (26 - age) / 8, 0.01)
    retired = np.clip((age - 60) / 8, 0, 0.95)
    selfemp = 0.06 + 0.003 * span
    unemp = np.full(n, 0.06)
    employed = np.clip(1 - student - retired - selfemp - unemp, 0.02, None)
    probs = np.stack([employed, selfemp, unemp, retired, student], axis=1)
    emp = _pick(rng, probs / probs.sum(axis=1, keepdims=True))
    emp_years = span * rng.beta(2.0, 2.5, n)
    emp_years = np.where(emp == 4, rng.exponential(0.6, n), emp_years)
    emp_years = np.where(emp == 2, span * rng.beta(1.0, 4.0, n), emp_years)
    emp_years = np.where(emp == 3, span * rng.beta(4.0, 2.0, n), emp_years)
    return age, emp, np.round(np.minimum(emp_years, span), 1)


def _regions(n: int, rng: np.random.Generator, shift: Shift) -> tuple[np.ndarray, np.ndarray]:
    """Region index (into REGIONS) and region names, with a shift's new region mixed in."""
    region = rng.choice(len(REGIONS), n, p=np.array([0.22, 0.24, 0.18, 0.20, 0.16]))
    regions = np.array(REGIONS, dtype=object)[region]
    if shift.new_region and shift.new_region_share > 0:
        newcomers = rng.random(n) < shift.new_region_share
        regions = np.where(newcomers, shift.new_region, regions)
    return region, regions


def _home(n: int, rng: np.random.Generator, span: np.ndarray, log_income: np.ndarray) -> np.ndarray:
    """Home ownership (index into HOME): older and richer applicants own more often."""
    own_p = np.clip(0.02 + 0.012 * span, 0, 0.55)
    mort_p = np.clip(0.08 + 0.008 * span + 0.15 * (log_income - 10.3), 0.02, 0.5)
    other_p = np.full(n, 0.05)
    rent_p = np.clip(1 - own_p - mort_p - other_p, 0.03, None)
    home_probs = np.stack([rent_p, mort_p, own_p, other_p], axis=1)
    return _pick(rng, home_probs / home_probs.sum(axis=1, keepdims=True))


def _loan(
    n: int,
    rng: np.random.Generator,
    shift: Shift,
    age: np.ndarray,
    emp: np.ndarray,
    home: np.ndarray,
    log_income: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loan purpose (index into PURPOSES), amount and term index (into TERMS)."""
    base = np.array([0.24, 0.16, 0.26, 0.10, 0.12, 0.12])
    purpose_w = np.tile(base, (n, 1))
    purpose_w[:, 3] *= np.where(age < 30, 3.0, 0.5)  # education: the young
    purpose_w[:, 1] *= np.where(home >= 1, 2.0, 0.3)  # home improvement: owners
    purpose_w[:, 4] *= np.where(emp == 1, 4.0, 1.0)  # business: the self-employed
    purpose = _pick(rng, purpose_w / purpose_w.sum(axis=1, keepdims=True))
    log_amount = (
        8.9
        + 0.5 * (log_income - 10.3)
        + np.array([0.35, 0.5, 0.25, -0.1, 0.75, -0.5])[purpose]
        + rng.normal(0, 0.5, n)
    )
    amount = np.clip(np.round(np.exp(log_amount) * shift.loan_factor, -2), 500, 250_000)
    term_idx = np.clip(
        np.round(np.log(amount / 1500) / 0.8 + rng.normal(0, 0.9, n)), 0, len(TERMS) - 1
    ).astype(int)
    return purpose, amount, term_idx


def _lookup(values: pd.Series, table: dict[str, float]) -> np.ndarray:
    """Map categories to numbers; categories not in the table count 0."""
    return np.asarray(values.map(table).fillna(0.0).to_numpy(dtype=float))


def default_logit(x: pd.DataFrame, drift: Drift = Drift()) -> np.ndarray:
    """The hidden truth as log-odds of default, from complete features."""
    payment = _annuity(
        x["loan_amount"].to_numpy(float),
        x["interest_rate"].to_numpy(float),
        x["loan_term"].to_numpy(float),
    )
    burden = 12 * payment / x["income"].to_numpy(float)  # share of income the loan takes
    age = x["age"].to_numpy(float)
    emp = x["employment_type"]
    z = (
        -3.0
        + drift.burden_weight * 7.0 * np.tanh(np.maximum(burden - 0.1, 0) / 0.2)
        + 6.0 * np.maximum(x["debt_to_income"].to_numpy(float) - 0.35, 0)
        + drift.history_weight * 1.1 * np.log1p(x["late_payments"].to_numpy(float))
        + 0.003 * (age - 42) ** 2
        - 0.09 * np.minimum(x["employment_years"].to_numpy(float), 12)
        - 0.04 * np.minimum(x["credit_history_years"].to_numpy(float), 20)
        + _lookup(emp, {"unemployed": 1.3, "student": 0.5, "self_employed": 0.3})
        + _lookup(
            x["loan_purpose"],
            {
                "business": 0.45,
                "debt_consolidation": 0.4,
                "medical": 0.3,
                "car": -0.2,
                "home_improvement": -0.35,
            },
        )
        + _lookup(x["home_ownership"], {"rent": 0.3, "other": 0.3, "own": -0.4})
        # the self-employed borrowing for their business carry their business's risk
        + 0.8 * ((emp == "self_employed") & (x["loan_purpose"] == "business")).to_numpy(float)
    )
    if drift.region:
        z = z + drift.region_logit * (x["region"] == drift.region).to_numpy(float)
    if drift.employment:
        z = z + drift.employment_logit * (emp == drift.employment).to_numpy(float)
    return np.asarray(z)


def p_default(x: pd.DataFrame, drift: Drift = Drift()) -> np.ndarray:
    """The hidden truth `p(default | x)`, from complete features."""
    return np.asarray(1.0 / (1.0 + np.exp(-default_logit(x, drift))))


def mask_missing(x: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Blank out values at each feature's missing rate (as recorded by the bank)."""
    x = x.copy()
    for f in FEATURES:
        if f.missing > 0:
            gone = rng.random(len(x)) < f.missing
            if f.kind == "int":
                x[f.name] = x[f.name].astype("Int64")
            elif f.kind == "category":
                x[f.name] = x[f.name].astype(object)
            x.loc[gone, f.name] = None if f.kind == "category" else pd.NA
    return x


class Drawn(NamedTuple):
    """Applicants drawn: their rows (features, leak, label) and the hidden truth of each."""

    frame: pd.DataFrame
    p_default: np.ndarray


def draw(n: int, rng: np.random.Generator, shift: Shift = Shift(), drift: Drift = Drift()) -> Drawn:
    """Draw `n` applicants with label, leak and missing values; return (frame, p_default)."""
    x = sample_applicants(n, rng, shift)
    p = p_default(x, drift)
    label = (rng.random(n) < p).astype(int)
    # Collection calls happen after a missed payment: almost only for defaulters.
    calls = np.where(label == 1, 2 + rng.poisson(3.0, n), rng.poisson(0.03, n))
    x = mask_missing(x, rng)
    x[LEAK] = calls.astype(int)
    x[LABEL] = label
    return Drawn(x, p)


def training_data(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_DATA_SEED) -> pd.DataFrame:
    """The public training data: `rows` applicants from the original world."""
    frame, _ = draw(rows, np.random.default_rng(seed))
    return frame


def write_csv(frame: pd.DataFrame, path: str | PathLike[str]) -> None:
    """Write a frame so that the same data gives the same bytes on every platform."""
    frame.to_csv(path, index=False, lineterminator="\n")


def write_training_csv(
    path: str | PathLike[str], rows: int = DEFAULT_ROWS, seed: int = DEFAULT_DATA_SEED
) -> pd.DataFrame:
    """Generate the training data and write it to `path`; return the frame."""
    frame = training_data(rows, seed)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_csv(frame, path)
    return frame


def dictionary_markdown() -> str:
    """The data dictionary table of data/README.md, from the one declaration of the features."""
    rows = ["| column | type | unit | range | meaning |", "|---|---|---|---|---|"]
    for f in FEATURES:
        if f.kind == "category":
            kind, span = "category", ", ".join(f"`{c}`" for c in f.categories)
        else:
            kind, span = ("integer" if f.kind == "int" else "number"), f"{f.low:,g} – {f.high:,g}"
        missing = f" Missing in about {f.missing:.0%} of rows." if f.missing else ""
        meaning = f.meaning[:1].upper() + f.meaning[1:]
        rows.append(f"| `{f.name}` | {kind} | {f.unit or '—'} | {span} | {meaning}.{missing} |")
    rows.append(f"| `{LEAK}` | integer | count | 0 – 30 | Calls from the collection department.¹ |")
    rows.append(f"| `{LABEL}` | integer | — | `0`, `1` | The outcome: 1 = the loan defaulted. |")
    return "\n".join(rows)
