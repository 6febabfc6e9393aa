"""The training recipe shared by the notebook and retraining: leak left out, messy rows cleaned."""

# EXERCISES REPLACE "leak left out" WITH "label left out"
# EXERCISES REPLACE "import LEAK, feature_columns" WITH "import feature_columns"
import numpy as np
from conftest import FEATURES, make_applicants
from modules.train import LEAK, feature_columns, train_pipeline


# COMPLETE BEGIN
def test_the_leak_and_the_label_are_never_features() -> None:
    frame = make_applicants(200)
    frame[LEAK] = frame["default"] * 3  # "predicts" perfectly: it is known only afterwards
    pipeline, metadata = train_pipeline(frame)
    assert LEAK not in metadata["features"] and "default" not in metadata["features"]
    assert metadata["features"] == feature_columns(frame) == FEATURES
    assert pipeline.predict_proba(frame[FEATURES]).shape == (200, 2)


def test_the_features_are_a_subset_of_the_request_contract() -> None:
    """What prevents a leak: the model may use only what a request carries (data/README.md)."""
    from modules.features import REQUEST_COLUMNS  # here: only this level has the test

    training = make_applicants(20).reindex(columns=[*REQUEST_COLUMNS, LEAK, "default"])
    assert set(feature_columns(training)) <= set(REQUEST_COLUMNS)


# COMPLETE END
# EXERCISES BEGIN
# def test_the_label_is_never_a_feature() -> None:
#     frame = make_applicants(200)
#     pipeline, metadata = train_pipeline(frame)
#     assert "default" not in metadata["features"]
#     assert metadata["features"] == feature_columns(frame) == FEATURES
#     assert pipeline.predict_proba(frame[FEATURES]).shape == (200, 2)
#
#
# EXERCISES END
def test_retraining_on_messy_logged_requests_keeps_the_training_description() -> None:
    training = make_applicants(400)
    _, metadata = train_pipeline(training)
    logged = make_applicants(100, seed=3).astype(object)
    logged.loc[::4, "age"] = logged.loc[::4, "age"].astype(str)  # numbers sent as strings
    logged.loc[::5, "region"] = "NORTH "  # a category in another spelling
    weights = np.ones(100)
    pipeline, again = train_pipeline(logged, metadata=metadata, sample_weight=weights)
    assert again is metadata  # still cleaned against the training data's description
    assert again["numeric"] == ["age", "income", "loan_amount"]
    assert pipeline.predict(training[FEATURES]).shape == (400,)
