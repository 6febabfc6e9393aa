"""The messy-input transformations applied to a request's features (the messy phase).

Each kind changes one field of the features (or adds one) the way real clients send
broken data. `apply` picks the kinds for one request and returns the features with the
kinds actually applied, so the team pages can show what a request carried.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

KINDS = (
    "missing_field",  # a key is absent
    "null_value",  # a key is present with JSON null
    "number_as_string",  # 42 sent as "42"
    "unknown_category",  # a category never seen in training
    "out_of_range",  # a number outside its valid range: negative age, zero income
    "extra_field",  # a key the model does not know
    "category_case",  # "Self_Employed" or "RENT" instead of "self_employed", "rent"
)
UNKNOWN_CATEGORIES = ("unknown", "n/a", "prefer_not_to_say", "other_new", "?")
EXTRA_FIELDS = (
    ("comment", "urgent, customer called twice"),
    ("channel", "mobile_app"),
    ("applicant_ref", 918273),
    ("_debug", True),
    ("referrer", None),
)


@dataclass(frozen=True)
class Field:
    """What the oddities need to know of one feature."""

    name: str
    numeric: bool
    low: float | None = None
    high: float | None = None


def _out_of_range(field: Field, rng: np.random.Generator) -> float | int:
    """A value outside the field's range: negative, zero, or absurdly large."""
    choice = rng.integers(3)
    if choice == 0:
        return -abs(int(field.high or 1)) // 10 - 1  # negative (negative age, negative amount)
    if choice == 1 and (field.low or 0) > 0:
        return 0  # zero where zero is impossible (income 0)
    return int((field.high or 1) * 10 + 1)  # far above the maximum


def _candidates(kind: str, features: dict[str, object], fields: list[Field]) -> list[Field]:
    """The fields that oddity `kind` can change in `features`."""
    if kind == "missing_field":
        return [f for f in fields if f.name in features]
    present = [f for f in fields if features.get(f.name) is not None]
    if kind in ("null_value", "out_of_range", "number_as_string"):
        return [f for f in present if f.numeric or kind == "null_value"]
    # the category kinds
    texts = [f for f in present if not f.numeric and isinstance(features[f.name], str)]
    if kind == "category_case":
        return [f for f in texts if features[f.name] != str(features[f.name]).upper()]
    return texts


def _odd_value(kind: str, field: Field, value: object, rng: np.random.Generator) -> object:
    """What oddity `kind` puts in place of `value` (not for missing_field)."""
    if kind == "null_value":
        return None
    if kind == "number_as_string":
        return str(value)
    if kind == "out_of_range":
        return _out_of_range(field, rng)
    if kind == "unknown_category":
        return UNKNOWN_CATEGORIES[rng.integers(len(UNKNOWN_CATEGORIES))]
    assert isinstance(value, str)  # category_case: _candidates keeps strings only
    return value.upper() if rng.integers(2) else value.title()


def _apply_one(
    kind: str,
    features: dict[str, object],
    fields: list[Field],
    touched: set[str],
    rng: np.random.Generator,
) -> bool:
    """Apply one oddity kind in place to a field not yet `touched`; False when none fits."""
    if kind == "extra_field":
        key, value = EXTRA_FIELDS[rng.integers(len(EXTRA_FIELDS))]
        features[key] = value
        return True
    candidates = _candidates(kind, features, [f for f in fields if f.name not in touched])
    if not candidates:
        return False
    field = candidates[rng.integers(len(candidates))]
    touched.add(field.name)  # one oddity per field, so each stays visible as itself
    if kind == "missing_field":
        del features[field.name]
    else:
        features[field.name] = _odd_value(kind, field, features.get(field.name), rng)
    return True


class Oddified(NamedTuple):
    """A request's features with oddities, and the kinds applied."""

    features: dict[str, object]
    kinds: tuple[str, ...]


def apply(
    features: dict[str, object],
    fields: list[Field],
    kinds: tuple[str, ...],
    rng: np.random.Generator,
) -> "Oddified":
    """Apply one to three of `kinds` to a copy of `features`; return it and the kinds applied."""
    out = dict(features)
    count = 1 + int(rng.random() < 0.3) + int(rng.random() < 0.1)
    chosen = {kinds[i] for i in rng.integers(len(kinds), size=count)}
    touched: set[str] = set()
    applied = [k for k in KINDS if k in chosen and _apply_one(k, out, fields, touched, rng)]
    return Oddified(out, tuple(applied))
