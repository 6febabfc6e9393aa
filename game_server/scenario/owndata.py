"""Bring your own data: split an instructor's CSV into a public training file and a hidden pool.

The split is seeded and stratified on the label, so both files keep the label's share.
The game then draws requests from the pool (with replacement); with no generator there is
no oracle, only the majority-class baseline.
"""

import logging
from os import PathLike
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from game_server.common.logs import first_line
from game_server.scenario import oddities, population

log = logging.getLogger(__name__)

MIN_ROWS = 50  # fewer and neither the training file nor the pool is worth a game
TRAIN_FILE = "train_data.csv"
POOL_FILE = "pool.csv"


class OwnDataError(ValueError):
    """A CSV that cannot be used as own data; the message is one line."""


def read_labelled_csv(path: str | PathLike[str], label: str) -> pd.DataFrame:
    """Read a CSV and check it has a binary label column and enough rows."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise OwnDataError(f"{path}: no such file") from None
    except pd.errors.EmptyDataError:
        raise OwnDataError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise OwnDataError(f"{path}: not a readable CSV: {first_line(exc)}") from None
    if label not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:12]))
        raise OwnDataError(f"{path}: no label column {label!r} (columns: {shown})")
    if len(frame) < MIN_ROWS:
        raise OwnDataError(f"{path}: {len(frame)} rows; at least {MIN_ROWS} are needed")
    if frame[label].isna().any():
        raise OwnDataError(f"{path}: label column {label!r} has missing values")
    values = set(frame[label].unique().tolist())
    if not values <= {0, 1} or len(values) < 2:
        shown = ", ".join(sorted(map(repr, values))[:5])
        raise OwnDataError(
            f"{path}: label column {label!r} must hold both 0 and 1 and nothing else "
            f"(found {shown})"
        )
    if frame.shape[1] < 2:
        raise OwnDataError(f"{path}: no feature columns besides the label {label!r}")
    frame[label] = frame[label].astype(int)
    return frame


def split(
    frame: pd.DataFrame, label: str, pool_share: float = 0.3, seed: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified, seeded split into (training, pool) frames, each in the original row order."""
    rng = np.random.default_rng(seed)
    in_pool = np.zeros(len(frame), dtype=bool)
    for value in (0, 1):
        rows = np.flatnonzero(frame[label].to_numpy() == value)
        take = int(round(len(rows) * pool_share))
        in_pool[rng.choice(rows, size=take, replace=False)] = True
    return frame[~in_pool].reset_index(drop=True), frame[in_pool].reset_index(drop=True)


def split_csv(
    csv: str | PathLike[str],
    label: str,
    out_dir: str | PathLike[str],
    pool_share: float = 0.3,
    seed: int = 1,
) -> dict:
    """Split `csv` into out_dir/train_data.csv and out_dir/pool.csv; return a summary."""
    frame = read_labelled_csv(csv, label)
    train, pool = split(frame, label, pool_share, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    population.write_csv(train, out / TRAIN_FILE)
    population.write_csv(pool, out / POOL_FILE)
    log.info(
        "split own data csv=%s label=%s train=%d pool=%d out=%s",
        csv,
        label,
        len(train),
        len(pool),
        out,
    )
    return {
        "train": str(out / TRAIN_FILE),
        "pool": str(out / POOL_FILE),
        "train_rows": len(train),
        "pool_rows": len(pool),
        "default_rate": float(frame[label].mean()),
    }


class OwnData(NamedTuple):
    """An own-data game's hidden pool (in the training file's columns) and training file."""

    pool: pd.DataFrame
    training: pd.DataFrame


def load_pool(
    pool_path: str | PathLike[str], training_path: str | PathLike[str] | None, label: str
) -> OwnData:
    """Read the hidden pool and the public training file of a game that uses own data."""
    if training_path is None:  # a game file's pool always has one (gamefile.py)
        raise OwnDataError(f"{pool_path}: no training file beside the pool")
    pool = read_labelled_csv(pool_path, label)
    training = read_labelled_csv(training_path, label)
    missing = set(training.columns) - set(pool.columns)
    if missing:
        raise OwnDataError(f"{pool_path}: lacks the training columns {sorted(missing)}")
    return OwnData(pool[list(training.columns)], training)


def feature_kinds(training: pd.DataFrame, label: str) -> dict[str, str]:
    """Each feature column's kind (int, float or category), from the training data."""
    kinds = {}
    for name in training.columns:
        if name == label:
            continue
        series = training[name]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_integer_dtype(series):
            kinds[name] = "int"
        elif pd.api.types.is_float_dtype(series):
            whole = series.dropna()
            kinds[name] = "int" if len(whole) and (whole == whole.round()).all() else "float"
        else:
            kinds[name] = "category"
    return kinds


def oddity_fields(training: pd.DataFrame, label: str) -> list[oddities.Field]:
    """The oddities' view of the features: numeric ranges taken from the training data."""
    fields = []
    for name, kind in feature_kinds(training, label).items():
        if kind == "category":
            fields.append(oddities.Field(name, False))
        else:
            series = training[name].dropna()
            low = float(series.min()) if len(series) else 0.0
            high = float(series.max()) if len(series) else 1.0
            fields.append(oddities.Field(name, True, low, high))
    return fields
