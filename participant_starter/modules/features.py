"""Cleaning the features: the same code for training (notebook) and serving (main.py).

Requests in production are messy: fields go missing, numbers arrive as strings, categories
change their capitalisation or were never seen in training. The model was trained on
clean columns, so every row goes through `clean_row` or `clean_features` (one request)
or `clean_frame` (a whole table) before the model sees it. What the model knows about its
training data (the features, their types, ranges and categories) lives in the metadata
saved with it, so serving checks requests against what the model was actually trained on.
"""

import math
from typing import Any

import numpy as np
import pandas as pd

MISSING = math.nan  # what the pipeline's imputers fill in
# The request contract: the columns a customer's request carries, and only these
# (data/README.md). A model that needs another column cannot get it in the game.
REQUEST_COLUMNS = (
    *("age", "income", "employment_type", "employment_years", "home_ownership", "region"),
    *("loan_purpose", "loan_amount", "loan_term", "interest_rate", "debt_to_income"),
    *("credit_history_years", "num_credit_lines", "late_payments"),
)


def describe_training_data(frame: pd.DataFrame, label: str, features: list[str]) -> dict:
    """The metadata serving needs: features, numeric vs categorical, ranges, categories."""
    numeric = [
        name
        for name in features
        if pd.api.types.is_numeric_dtype(frame[name])
        and not pd.api.types.is_bool_dtype(frame[name])
    ]
    categorical = [name for name in features if name not in numeric]
    ranges = {name: [float(frame[name].min()), float(frame[name].max())] for name in numeric}
    categories = {
        name: sorted(frame[name].dropna().astype(str).str.strip().str.lower().unique().tolist())
        for name in categorical
    }
    labels = frame[label].astype(int)
    return {
        "label": label,
        "features": list(features),
        "numeric": numeric,
        "categorical": categorical,
        "ranges": ranges,
        "categories": categories,
        "majority_class": int(labels.mode()[0]),  # the fallback answer
        "base_rate": float(labels.mean()),
        "training_rows": len(frame),
    }


def _number(value: Any) -> float:
    """A float from a JSON value (numbers, or numbers sent as strings); NaN when it is none."""
    if isinstance(value, bool):  # True is an int in Python, but not an age or an income
        return MISSING
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        return MISSING
    return number if math.isfinite(number) else MISSING


def _into_range(number: float, low: float, high: float) -> tuple[float, str | None]:
    """Clip a plausible value into the training range; an impossible one becomes missing.

    Impossible: negative or zero where training had only positive values (age -3,
    income 0), or more than one training span beyond the range (age 800). A team may
    choose differently, e.g. trust larger loans than it saw in training.
    """
    if low <= number <= high:
        return number, None
    # EXERCISE 2 BEGIN: an impossible value becomes MISSING, a plausible one is clipped
    span = (high - low) or 1.0
    if (
        (low >= 0 and number < 0)
        or (low > 0 and number == 0)
        or not (low - span <= number <= high + span)
    ):
        return MISSING, "out_of_range"
    return min(max(number, low), high), "clipped"
    # EXERCISE 2 END


def _category(value: Any, known: set[str]) -> tuple[object, str | None]:
    """A known category, matched ignoring case and spaces; missing when unknown."""
    if value is None or _is_nan(value):
        return MISSING, "missing"
    text = str(value).strip().lower() if isinstance(value, (str, int, float)) else None
    if text in known:
        return text, (None if value == text else "normalised")
    return MISSING, "unknown_category"


def _clean_row(raw: Any, metadata: dict, known: dict, problems: list[str] | None) -> dict:
    """One cleaned row (a dict of every feature) from one raw features object."""
    note = problems.append if problems is not None else (lambda _note: None)
    if not isinstance(raw, dict):
        note("features:not_an_object")
        raw = {}
    row: dict[str, object] = {}
    why: str | None
    for name in metadata["numeric"]:
        value = raw.get(name)
        number = _number(value)
        if math.isnan(number):
            why = "missing" if value is None or _is_nan(value) else "not_a_number"
        else:
            number, why = _into_range(number, *metadata["ranges"][name])
            if why is None and isinstance(value, str):
                why = "number_as_string"
        row[name] = number
        if why:
            note(f"{name}:{why}")
    for name in metadata["categorical"]:
        row[name], why = _category(raw.get(name), known[name])
        if why:
            note(f"{name}:{why}")
    for name in sorted(raw.keys() - row.keys(), key=str):
        note(f"extra:{str(name)[:40]}")
    return row


def _is_nan(value: object) -> bool:
    """True for a float NaN (how pandas spells a missing value in a training table)."""
    return isinstance(value, float) and math.isnan(value)


def clean_row(raw: Any, metadata: dict, problems: list[str] | None = None) -> dict:
    """One request's features, cleaned: a dict of every feature (`rows_frame` makes a table)."""
    known = {name: set(metadata["categories"][name]) for name in metadata["categorical"]}
    return _clean_row(raw, metadata, known, problems)


def rows_frame(rows: list[dict], metadata: dict) -> pd.DataFrame:
    """A frame of the model's features, in training order, from cleaned rows (`clean_row`)."""
    numeric = set(metadata["numeric"])
    columns = {}
    for name in metadata["features"]:
        values = [row[name] for row in rows]
        # Numbers as a numpy array: much cheaper than a pandas Series (the API builds a
        # frame per batch of requests). Categories as Python objects, as in training.
        if name in numeric:
            columns[name] = np.array(values, dtype=float)
        else:
            columns[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(columns)


def clean_records(records: list, metadata: dict, problems: list[str] | None = None) -> pd.DataFrame:
    """A frame of the model's features, in training order, from raw feature dicts."""
    known = {name: set(metadata["categories"][name]) for name in metadata["categorical"]}
    rows = [_clean_row(raw, metadata, known, problems) for raw in records]
    return rows_frame(rows, metadata)


def clean_features(raw: Any, metadata: dict, problems: list[str] | None = None) -> pd.DataFrame:
    """One request's features as a one-row frame; `problems` collects what was fixed."""
    return clean_records([raw], metadata, problems)


def clean_frame(frame: pd.DataFrame, metadata: dict) -> pd.DataFrame:
    """A whole table (training data or logged requests) cleaned exactly like a request."""
    present = [name for name in metadata["features"] if name in frame.columns]
    return clean_records(frame[present].to_dict("records"), metadata)
