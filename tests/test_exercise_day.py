"""The exercise level as a team lives it (issue 24): the exercises in the README's order,
a fair leak puzzle, and the participant kit fetched beforehand.

At every step of the walk (the solutions applied one at a time from the marked source),
`pytest -x`'s first failure, `selfcheck.py`'s next exercise and the README's table name the
same exercise. The request contract (modules/features.py) is what the game sends and what
the data dictionary says; selfcheck sends only it, and a model that needs another column
fails there. The kit participants fetch holds no solution and no word on the leak, yet
the data shows it.
"""

import io
import re
import subprocess
import sys
import tarfile
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from flask import Flask, request
from starter_helpers import STARTER, TRAIN_CSV, copy_starter
from werkzeug.serving import make_server

from game_server.accounts import levels, markers
from game_server.accounts.starter import wanted
from game_server.scenario import population

LEAK = population.LEAK


@pytest.fixture(scope="module")
def splits() -> dict[str, markers.Split]:
    """Every text file of the starter a team gets, at both levels."""
    return levels.split_tree(STARTER, keep=wanted)


def readme_table(starter: Path) -> list[tuple[int, str]]:
    """The README's table of exercises: (number, file), in its order."""
    text = (starter / "README.md").read_text()
    return [(int(n), f) for n, f in re.findall(r"^\| (\d) \| `([^`]+)`", text, re.MULTILINE)]


def failures(starter: Path, tmp_path: Path, *options: str) -> list[str]:
    """pytest in the starter: "test: message" of each failure or error, in order."""
    report = tmp_path / "report.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options]
        + [f"--junit-xml={report}"],
        cwd=starter,
        capture_output=True,
        text=True,
        timeout=600,
    )
    found = [
        f"{case.get('name')}: {problem.get('message', '')}"
        for case in ET.parse(report).getroot().iter("testcase")
        for problem in (case.find("failure"), case.find("error"))
        if problem is not None
    ]
    assert found or done.returncode == 0, done.stdout[-2000:]
    return found


def first_failure(starter: Path, tmp_path: Path) -> str | None:
    """`pytest -x` in the starter: the message of its first failure, None when all pass."""
    return next(iter(failures(starter, tmp_path, "-x")), None)


def next_exercise(starter: Path) -> str:
    """The first line `python selfcheck.py` prints (no API runs: it stops after it)."""
    done = subprocess.run(
        [sys.executable, "selfcheck.py", "--url", "http://127.0.0.1:9/predict"],
        cwd=starter,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.splitlines()[0]


def solve(starter: Path, splits: dict[str, markers.Split], number: int) -> None:
    """Write exercise `number`'s solution (from the marked source) into the team's starter."""
    for rel, both in splits.items():
        if any(change.exercise == number for change in both.changes):
            path = starter / rel
            ours = [c for c in both.changes if c.exercise == number]
            # The positions of a change are in the untouched exercise text: apply this
            # exercise and the ones already done to a fresh copy of it.
            done = [c for c in both.changes if c.exercise is not None and c.exercise < number]
            path.write_text(markers.fill(rel, both.exercises, done + ours))


@pytest.mark.slow
@pytest.mark.timeout(1500)  # six runs of the starter's tests
def test_walking_the_exercises_in_order_pytest_selfcheck_and_the_readme_agree(tmp_path, splits):
    starter = copy_starter(tmp_path / "participant_starter", levels.EXERCISES)
    gaps = levels.gaps_of(splits)
    table = readme_table(starter)
    assert table == [(gap.number, gap.file) for gap in gaps]
    # With every exercise open, the whole suite fails only where an exercise is missing:
    # the tests that need none pass (and at the end, with all done). They run after the
    # others, so the walk's `pytest -x` below stops before them.
    every = failures(starter, tmp_path)
    assert every and all(re.search(r": Exercise \d: .* still open", f) for f in every), every
    for gap in gaps:
        failure = first_failure(starter, tmp_path)
        assert failure is not None and f"Exercise {gap.number}: {gap.hint}" in failure, (
            gap.number,
            failure,
        )
        assert next_exercise(starter) == (
            f"Next exercise: {gap.number} in {gap.file}:{gap.line}: {gap.hint}"
        )
        solve(starter, splits, gap.number)
    assert first_failure(starter, tmp_path) is None  # every exercise done: all tests pass
    assert "exercise" not in next_exercise(starter).lower()
    for rel, both in splits.items():  # the walk ends at the complete level's code
        if both.changes and all(change.exercise for change in both.changes):
            assert (starter / rel).read_text() == both.complete, rel


# --- the request contract: what the game sends, what the dictionary says, what selfcheck sends


def request_columns() -> tuple[str, ...]:
    """The starter's request contract (modules/features.py)."""
    sys.path.insert(0, str(STARTER))
    try:
        from modules.features import REQUEST_COLUMNS
    finally:
        sys.path.remove(str(STARTER))
    return REQUEST_COLUMNS


def test_the_request_contract_is_what_the_game_sends_and_the_dictionary_says():
    columns = request_columns()
    assert columns == population.FEATURE_NAMES  # the customer's requests carry these
    assert LEAK not in columns and population.LABEL not in columns
    for level in levels.LEVELS:
        text = levels.render("README.md", (TRAIN_CSV.parent / "README.md").read_text(), level)
        table = re.findall(r"^\| `(\w+)` \|", text, re.MULTILINE)
        first, last = columns[0], columns[-1]
        assert table[: len(columns)] == list(columns)  # "from `age` to `late_payments`"
        assert f"carry the fourteen columns from `{first}` to `{last}`, and\nonly these" in text
        assert len(columns) == 14


class LeakyAPI:
    """An API whose model needs the leak column; it records what it is sent."""

    def __init__(self, features: list[str], status: int = 200):
        """Serve on a free loopback port in a thread, answering with `status`."""
        app = Flask("leaky")
        self.sent: list[dict] = []
        self.status = status
        app.add_url_rule("/health", view_func=lambda: {"features": features})
        app.add_url_rule("/predict", view_func=self.predict, methods=["POST"])
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/predict"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def predict(self):
        """A valid answer, whatever comes."""
        self.sent.append(request.get_json()["features"])
        return {"pred": 0}, self.status


def selfcheck_against(
    starter: Path, features: list[str], status: int = 200
) -> tuple[subprocess.CompletedProcess, list]:
    """Run selfcheck against a LeakyAPI whose model reports `features`; (run, bodies sent)."""
    api = LeakyAPI(features, status)
    try:
        done = subprocess.run(
            [sys.executable, "selfcheck.py", "--url", api.url, "--burst", "10"],
            cwd=starter,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        api.server.shutdown()
    return done, api.sent


@pytest.mark.parametrize("level", levels.LEVELS)
def test_selfcheck_sends_the_request_contract_and_fails_a_model_that_needs_more(tmp_path, level):
    starter = copy_starter(tmp_path / "participant_starter", level)
    columns = list(request_columns())
    done, sent = selfcheck_against(starter, ["age", "income", LEAK])
    assert done.returncode == 1
    fails = [line for line in done.stdout.splitlines() if line.startswith("  FAIL")]
    assert len(fails) == 1 and LEAK in fails[0] and "data/README.md" in fails[0], done.stdout
    assert "leak" not in done.stdout.lower()  # it says what is wrong, not the puzzle's name
    assert sent and all(LEAK not in body and "default" not in body for body in sent)
    assert list(sent[0]) == columns  # a clean request: every column of the contract
    done, _ = selfcheck_against(starter, ["age", "income"])
    assert done.returncode == 0, done.stdout


# --- the participant kit: what participants fetch before the workshop


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> dict[str, bytes]:
    """`make participant-kit`'s archive at the exercise level, its files by path."""
    out = tmp_path_factory.mktemp("kit") / "participant-kit.tar.gz"
    done = subprocess.run(
        [sys.executable, "-m", "game_server.accounts.levels", "exercises", str(out), "--archive"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with tarfile.open(out) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_the_kit_holds_no_solution_and_no_word_on_the_leak(kit, splits):
    assert "participant_starter/data/train_data.csv" in kit
    texts = {
        name: data.decode() for name, data in kit.items() if not name.endswith("train_data.csv")
    }
    for name, text in texts.items():
        assert not re.search(r"\bleak", text, re.IGNORECASE), name
        if LEAK in text:  # only its row of the data dictionary names the column
            assert name == "participant_starter/data/README.md", name
            assert [line for line in text.splitlines() if LEAK in line] == [
                f"| `{LEAK}` | integer | count | 0 – 30 | Calls from the collection department. |"
            ]
    solutions = 0
    for rel, both in splits.items():
        for change in both.changes:
            if change.exercise is not None:
                solution = "".join(change.lines)
                assert solution.strip() and solution not in texts[f"participant_starter/{rel}"]
                assert f'"Exercise {change.exercise}: ' in texts[f"participant_starter/{rel}"]
                solutions += 1
    assert solutions == 5


def test_the_leak_is_still_found_in_the_data(kit):
    data = pd.read_csv(io.BytesIO(kit["participant_starter/data/train_data.csv"]))
    correlation = data.select_dtypes("number").corr()["default"].drop("default").abs()
    assert correlation.idxmax() == LEAK and correlation[LEAK] > 2 * correlation.drop(LEAK).max()


def test_selfcheck_folds_a_repeated_failure_into_one_line_with_a_count(tmp_path):
    starter = copy_starter(tmp_path / "participant_starter", levels.EXERCISES)
    done, sent = selfcheck_against(starter, ["age", "income"], status=500)
    assert done.returncode == 1
    fails = [line for line in done.stdout.splitlines() if line.startswith("  FAIL")]
    cases = len(sent) - 10  # the clean and messy requests; then a burst of 10
    assert len(fails) == 2, done.stdout  # the requests one by one, then the burst
    assert fails[0].startswith(f"  FAIL  {cases} requests (clean request 1, clean request 2, ")
    assert fails[1].startswith("  FAIL  10 requests (burst 1, burst 2, burst 3, ...)")
    assert all("status 500 instead of 200" in line for line in fails)
    assert f"{len(sent)} of {len(sent)} requests would score -1" in done.stdout
