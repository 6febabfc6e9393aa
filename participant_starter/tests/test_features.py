"""Cleaning: every kind of messy input becomes a row the model can read."""

import math

import pytest
from conftest import make_applicants
from modules.features import clean_features, clean_frame, describe_training_data

EXERCISE_2 = pytest.mark.exercise(2)  # these cases need exercise 2 (tests/conftest.py)


@pytest.fixture(scope="module")
def metadata() -> dict:
    """What the tiny model knows of its training data."""
    frame = make_applicants()
    return describe_training_data(frame, "default", ["age", "income", "region"])


def clean(raw: object, metadata: dict) -> tuple[dict, list[str]]:
    """The cleaned row as a dict, and the problems found."""
    problems: list[str] = []
    row = clean_features(raw, metadata, problems)
    return row.iloc[0].to_dict(), problems


def test_metadata_knows_types_ranges_and_categories(metadata: dict) -> None:
    assert metadata["numeric"] == ["age", "income"]
    assert metadata["categorical"] == ["region"]
    assert metadata["categories"]["region"] == ["east", "north", "south"]
    low, high = metadata["ranges"]["age"]
    assert 18 <= low < high <= 79
    assert metadata["majority_class"] in (0, 1)


def test_clean_request_passes_unchanged(metadata: dict) -> None:
    row, problems = clean({"age": 40, "income": 50_000, "region": "north"}, metadata)
    assert row == {"age": 40.0, "income": 50_000.0, "region": "north"}
    assert problems == []


@pytest.mark.parametrize(
    ("raw", "column", "expected", "problem"),
    [
        ({"income": 50_000, "region": "north"}, "age", None, "age:missing"),
        ({"age": None, "region": "north"}, "age", None, "age:missing"),
        ({"age": "41"}, "age", 41.0, "age:number_as_string"),
        ({"age": " 41.5 "}, "age", 41.5, "age:number_as_string"),
        ({"age": "forty"}, "age", None, "age:not_a_number"),
        ({"age": True}, "age", None, "age:not_a_number"),
        ({"age": [40]}, "age", None, "age:not_a_number"),
        pytest.param({"age": -3}, "age", None, "age:out_of_range", marks=EXERCISE_2),
        pytest.param({"income": 0}, "income", None, "income:out_of_range", marks=EXERCISE_2),
        pytest.param({"age": 800}, "age", None, "age:out_of_range", marks=EXERCISE_2),
        pytest.param({"age": 85}, "age", 79.0, "age:clipped", marks=EXERCISE_2),
        ({"region": "mars"}, "region", None, "region:unknown_category"),
        ({"region": "NORTH"}, "region", "north", "region:normalised"),
        ({"region": " South "}, "region", "south", "region:normalised"),
        ({"region": {"name": "north"}}, "region", None, "region:unknown_category"),
        ({"comment": "urgent"}, "age", None, "extra:comment"),
    ],
)
def test_each_oddity_is_cleaned(
    metadata: dict, raw: dict, column: str, expected: float | str | None, problem: str
) -> None:
    row, problems = clean(raw, metadata)
    if expected is None:
        assert math.isnan(row[column])
    else:
        assert row[column] == expected
    assert problem in problems
    assert list(row) == ["age", "income", "region"]  # always every feature, in order


@pytest.mark.parametrize("features", [None, [1, 2], "age=40", 7])
def test_features_that_are_not_an_object_become_all_missing(
    metadata: dict, features: object
) -> None:
    row, problems = clean(features, metadata)
    assert problems[0] == "features:not_an_object"
    assert all(isinstance(v, float) and math.isnan(v) for v in row.values())


def test_clean_frame_gives_the_same_rows_as_single_requests(metadata: dict) -> None:
    frame = make_applicants(20, seed=3)
    table = clean_frame(frame, metadata)
    assert list(table.columns) == ["age", "income", "region"]
    assert table.dtypes["age"] == "float64" and table.dtypes["region"] == "object"
    for i in (0, 5, 13):
        single = clean_features(frame.iloc[i].to_dict(), metadata)
        assert single.iloc[0].to_dict().keys() == table.iloc[i].to_dict().keys()
        assert single.iloc[0].equals(table.iloc[i].rename(0))
