"""Training the model: the pipeline recipe, shared by the notebook and anything that retrains.

The notebook explains each step; this module is the one copy of the code, so that the
notebook, a retraining script and the API all agree on what "the model" is. Change the
recipe here (another classifier, other preprocessing) and every caller gets it.
"""

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modules.features import clean_frame, describe_training_data

LABEL = "default"  # what happened: 1 when the loan was not repaid
# COMPLETE BEGIN
LEAK = "collection_calls"  # only known AFTER the outcome: never a feature (see the notebook)
# COMPLETE END


def feature_columns(frame: pd.DataFrame, label: str = LABEL) -> list[str]:
    # COMPLETE BEGIN
    """Every column of `frame` the model may use: all but the label and the leak."""
    return [column for column in frame.columns if column not in (label, LEAK)]
    # COMPLETE END
    # EXERCISES BEGIN
    # """Every column of `frame` the model may use: all but the label."""
    # return [column for column in frame.columns if column != label]
    # EXERCISES END


def make_pipeline(metadata: dict, classifier: ClassifierMixin | None = None) -> Pipeline:
    """Preprocessing for numbers and categories, then the classifier (logistic regression)."""
    numeric = Pipeline(
        [
            # add_indicator: "was missing" becomes a feature of its own (it can matter).
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("scale", StandardScaler()),
        ]
    )
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            # Categories never seen in training are ignored instead of crashing the model.
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    preprocess = ColumnTransformer(
        [
            ("numeric", numeric, metadata["numeric"]),
            ("categorical", categorical, metadata["categorical"]),
        ],
        sparse_threshold=0,  # always a dense table: every classifier accepts one
    )
    model = classifier if classifier is not None else LogisticRegression(max_iter=1000)
    return Pipeline([("preprocess", preprocess), ("model", model)])


def train_pipeline(
    frame: pd.DataFrame,
    label: str = LABEL,
    features: list[str] | None = None,
    classifier: ClassifierMixin | None = None,
    sample_weight: np.ndarray | None = None,
    metadata: dict | None = None,
) -> tuple[Pipeline, dict]:
    """Fit the pipeline on a whole table; return (pipeline, metadata) ready for `save_model`.

    `features` defaults to `feature_columns(frame, label)`. The table is cleaned
    exactly as the API cleans a request, so the model sees training rows and requests alike.
    To retrain on the game's logged requests (messy: numbers as strings, odd categories),
    pass the `metadata` of the original training data: the requests are then cleaned
    against what the training data looked like, not described as if they were clean.
    """
    if metadata is None:
        features = features if features is not None else feature_columns(frame, label)
        metadata = describe_training_data(frame, label=label, features=features)
    pipeline = make_pipeline(metadata, classifier)
    fit_params = {} if sample_weight is None else {"model__sample_weight": sample_weight}
    pipeline.fit(clean_frame(frame, metadata), frame[label].astype(int), **fit_params)
    return pipeline, metadata
