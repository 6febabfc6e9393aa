"""Fixtures: a tiny model trained on made-up applicants, the app serving it, its client.

The made-up data has the same shape as the workshop data (numbers with gaps, categories,
a 0/1 label), so these tests run without `data/train_data.csv`.
"""

import numpy as np
import pandas as pd
import pytest
from main import create_app
from modules.features import clean_frame, describe_training_data
from modules.model_io import save_model
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

FEATURES = ["age", "income", "loan_amount", "employment_type", "region"]


def make_applicants(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Made-up applicants: large loans on small incomes default more often."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.integers(10_000, 120_000, n).astype(float),
            "loan_amount": rng.integers(1_000, 50_000, n),
            "employment_type": rng.choice(["employed", "self_employed", "unemployed"], n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    burden = frame["loan_amount"] / frame["income"]
    frame["default"] = (burden + rng.normal(0, 0.15, n) > 0.45).astype(int)
    frame.loc[::13, "income"] = np.nan  # training data has gaps, like the real one
    return frame


def train_tiny_model(frame: pd.DataFrame):
    """The notebook's kind of pipeline, fitted on `frame`; returns (pipeline, metadata)."""
    metadata = describe_training_data(frame, label="default", features=FEATURES)
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    preprocess = ColumnTransformer(
        [
            ("numeric", numeric, metadata["numeric"]),
            ("categorical", categorical, metadata["categorical"]),
        ]
    )
    pipeline = Pipeline([("preprocess", preprocess), ("model", LogisticRegression(max_iter=500))])
    pipeline.fit(clean_frame(frame, metadata), frame["default"])
    return pipeline, metadata


@pytest.fixture(scope="session")
def tiny_model():
    """(pipeline, metadata) of a model trained once for the whole test run."""
    return train_tiny_model(make_applicants())


@pytest.fixture
def model_path(tmp_path, tiny_model):
    """A model file saved the way the notebook saves it."""
    path = tmp_path / "models" / "model.pkl"
    save_model(*tiny_model, path)
    return path


@pytest.fixture
def app(tmp_path, model_path):
    """The API serving the tiny model, logging to a fresh SQLite database."""
    app = create_app(
        {
            "TESTING": True,
            "MODEL_PATH": str(model_path),
            "MODEL_CHECK_SECONDS": "0",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'predictions.sqlite'}",
        }
    )
    yield app
    app.extensions["db_writer"].close()


@pytest.fixture
def client(app):
    """A test client: requests without a real server."""
    return app.test_client()


@pytest.fixture
def applicant():
    """One clean request body, as the customer sends it."""
    return {
        "id": "r-1",
        "features": {
            "age": 35,
            "income": 42_000,
            "loan_amount": 9_000,
            "employment_type": "employed",
            "region": "north",
        },
    }
