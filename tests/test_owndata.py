"""Bring your own data: a seeded stratified split, a game drawing from the pool, bad CSVs."""

import textwrap

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scenario_helpers import TEST_SECRET

from game_server.cli.main import main
from game_server.scenario.gamefile import load_game_file
from game_server.scenario.stream import Scenario


@pytest.fixture
def own_csv(tmp_path):
    """An instructor's CSV: 400 rows, a 0/1 label `churned`, numbers, text and gaps."""
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 60, n),
            "spend": rng.normal(50, 15, n).round(2),
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "churned": (rng.random(n) < 0.3).astype(int),
        }
    )
    frame.loc[::17, "spend"] = np.nan
    path = tmp_path / "own.csv"
    frame.to_csv(path, index=False)
    return path, frame


def split(csv, out, *args):
    """Run `game-server data split` and return the result."""
    return CliRunner().invoke(
        main, ["data", "split", str(csv), "--label", "churned", "--out", str(out), *args]
    )


def test_split_is_seeded_stratified_and_complete(tmp_path, own_csv):
    csv, frame = own_csv
    assert split(csv, tmp_path / "a").exit_code == 0
    assert split(csv, tmp_path / "b").exit_code == 0
    assert split(csv, tmp_path / "c", "--seed", "2").exit_code == 0
    for name in ("train_data.csv", "pool.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "pool.csv").read_bytes() != (tmp_path / "c" / "pool.csv").read_bytes()
    train = pd.read_csv(tmp_path / "a" / "train_data.csv")
    pool = pd.read_csv(tmp_path / "a" / "pool.csv")
    assert len(pool) == pytest.approx(0.3 * len(frame), abs=2)
    assert len(train) + len(pool) == len(frame)
    for part in (train, pool):  # stratified: the label share is kept to within one row
        assert abs(part["churned"].mean() - frame["churned"].mean()) <= 1.5 / len(part)
    together = (
        pd.concat([train, pool]).sort_values(["tenure", "spend", "plan"]).reset_index(drop=True)
    )
    original = frame.sort_values(["tenure", "spend", "plan"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(together, original, check_dtype=False)


def test_a_game_draws_from_the_pool_with_baseline_only(tmp_path, own_csv):
    csv, _ = own_csv
    assert split(csv, tmp_path / "own").exit_code == 0
    game_path = tmp_path / "own.toml"
    game_path.write_text(
        textwrap.dedent(
            """\
            [game]
            pool = "own/pool.csv"
            label_column = "churned"

            [[phases]]
            kind = "warmup"
            duration = 60

            [[phases]]
            kind = "messy"
            duration = 60
            oddity_share = 0.5
            """
        )
    )
    scenario = Scenario(load_game_file(game_path), TEST_SECRET)
    pool = pd.read_csv(tmp_path / "own" / "pool.csv")
    rows = {tuple(r) for r in pool.astype(object).where(pool.notna(), None).itertuples(index=False)}
    drawn = [scenario.draw(0, s) for s in range(500)]
    for a in drawn:
        assert set(a.features) == {"tenure", "spend", "plan"}
        assert (a.features["tenure"], a.features["spend"], a.features["plan"], a.label) in rows
        assert a.p_default is None and scenario.oracle_expected_points(a) is None
        assert scenario.baseline_expected_points(a) == float(a.label == 0)
    assert scenario.baseline_pred == 0
    assert isinstance(drawn[0].features["tenure"], int)
    messy = [scenario.draw(1, s) for s in range(400)]
    assert 0.4 <= np.mean([bool(a.oddities) for a in messy]) <= 0.6
    result = CliRunner().invoke(main, ["game", "check", str(game_path)])
    assert result.exit_code == 0 and "own data: pool" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("a,b\n" + "1,0\n" * 100, "no label column 'churned' (columns: a, b)"),
        ("x,churned\n" + "1,2\n1,0\n" * 50, "must hold both 0 and 1 and nothing else"),
        ("x,churned\n" + "1,yes\n1,no\n" * 50, "must hold both 0 and 1 and nothing else"),
        ("x,churned\n" + "1,0\n" * 100, "must hold both 0 and 1"),
        ("x,churned\n1,0\n2,1\n", "2 rows; at least 50 are needed"),
        ("x,churned\n" + "1,0\n1,\n" * 50, "label column 'churned' has missing values"),
    ],
)
def test_bad_csvs_get_one_line_errors(tmp_path, content, message):
    csv = tmp_path / "bad.csv"
    csv.write_text(content)
    result = split(csv, tmp_path / "out")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith(f"Error: {csv}: ")
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_missing_csv_and_missing_pool(tmp_path):
    result = split(tmp_path / "nope.csv", tmp_path / "out")
    assert result.exit_code == 1 and "no such file" in result.output
    game_path = tmp_path / "g.toml"
    game_path.write_text('[game]\npool = "gone.csv"\n[[phases]]\nkind = "warmup"\nduration = 9\n')
    result = CliRunner().invoke(main, ["game", "check", str(game_path)])
    assert result.exit_code == 1 and "gone.csv: no such file" in result.output
