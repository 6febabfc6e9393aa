"""Training a bot's model with the starter's own code (`modules/train.py`, the notebook's).

Imported only inside a bot's process (`worker.py`), which puts the starter folder on
`sys.path` first: `modules` is the starter's package, exactly as in a team's home.
"""

import logging
from typing import Any

import pandas as pd
from modules.features import clean_frame
from modules.model_io import save_model
from modules.train import LEAK, train_pipeline
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

log = logging.getLogger(__name__)

SEED = 42


def careful_classifier() -> HistGradientBoostingClassifier:
    """The careful team's better model (in the starter's pipeline, after the same cleaning)."""
    return HistGradientBoostingClassifier(random_state=SEED)


def fit(kind: str, data: pd.DataFrame, label: str) -> tuple[Any, dict]:
    """(pipeline, metadata) of one kind of model trained on `data`."""
    if kind == "starter":  # the notebook's recipe, unchanged
        return train_pipeline(data, label=label)
    if kind == "careful":
        return train_pipeline(data, label=label, classifier=careful_classifier())
    if kind == "leaky":  # every column but the label: the leak too
        features = [c for c in data.columns if c != label]
        return train_pipeline(data, label=label, features=features)
    raise ValueError(f"unknown model kind {kind!r} (starter, careful, leaky)")


def train(kind: str, csv: str, label: str, out: str) -> dict:
    """Train one kind of model on the CSV, score it on a holdout, save it to `out`."""
    data = pd.read_csv(csv)
    train_rows, test_rows = train_test_split(
        data, test_size=0.2, stratify=data[label], random_state=SEED
    )
    pipeline, metadata = fit(kind, train_rows, label)
    holdout = accuracy_score(test_rows[label], pipeline.predict(clean_frame(test_rows, metadata)))
    baseline = float((test_rows[label] == metadata["majority_class"]).mean())
    pipeline, metadata = fit(kind, data, label)  # the final model learns from every row
    scores = {"holdout": {"accuracy": round(holdout, 4), "baseline_accuracy": round(baseline, 4)}}
    saved = save_model(pipeline, {**metadata, "scores": scores, "version": f"{kind}-1"}, out)
    log.info(
        "bot model trained kind=%s rows=%d holdout_accuracy=%.4f leak_used=%s path=%s",
        kind,
        len(data),
        holdout,
        LEAK in metadata["features"],
        out,
    )
    return saved
