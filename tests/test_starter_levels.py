"""The participant starter's two levels from one source (game_server/accounts/levels.py).

`complete` is the source without its markers; `exercises` has a stub where each solution
was. Filling every gap with its solution gives the complete starter back, byte for byte;
the exercise level's own tests fail, each naming its gap; `users create --starter` puts
the chosen level into a team's home.
"""

import functools
import io
import json
import re
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from starter_helpers import STARTER, TRAIN_CSV

from game_server.accounts import apply, levels, markers
from game_server.accounts.config import AccountsError, Settings
from game_server.accounts.plan import Secrets, TeamPlan
from game_server.accounts.roster import Team
from game_server.accounts.starter import starter_tarball, wanted
from game_server.accounts.state import DbState, State

MARKER = re.compile(r"(#|<!--)\s*(EXERCISES?|COMPLETE)\b.*(BEGIN|END|REPLACE)")
EXERCISE_COUNT = 5


@pytest.fixture(scope="module")
def splits() -> dict[str, markers.Split]:
    """Every text file of the starter a team gets, at both levels."""
    return levels.split_tree(STARTER, keep=wanted)


@pytest.fixture(scope="module")
def gaps(splits) -> list[levels.Gap]:
    """The exercises, in order."""
    return levels.gaps_of(splits)


def test_filling_every_gap_with_its_solution_gives_the_complete_starter_back(splits):
    complete = levels.tree(STARTER, levels.COMPLETE, keep=wanted)
    exercises = levels.tree(STARTER, levels.EXERCISES, keep=wanted)
    assert complete.keys() == exercises.keys() and complete != exercises
    filled = {
        rel: (
            markers.fill(rel, data.decode(), splits[rel].changes).encode()
            if rel in splits
            else data
        )
        for rel, data in exercises.items()
    }
    assert filled == complete  # byte for byte, every file


def test_five_gaps_numbered_in_order_each_a_stub_with_its_hint(splits, gaps):
    assert [gap.number for gap in gaps] == list(range(1, EXERCISE_COUNT + 1))
    assert [gap.file for gap in gaps] == [
        "main.py",
        "modules/features.py",
        "modules/database.py",
        "tests/test_api.py",
        "modules/model_io.py",
    ]
    for gap in gaps:
        lines = splits[gap.file].exercises.splitlines()
        stub = " ".join(line.strip() for line in lines[gap.line - 1 : gap.line + 2])
        assert stub.startswith(
            f'raise NotImplementedError( "Exercise {gap.number}: {gap.hint}"'
        ) or (stub.startswith(f'raise NotImplementedError("Exercise {gap.number}: {gap.hint}")')), (
            stub
        )
        assert len(gap.hint) > 20


def test_no_level_keeps_a_marker_and_unmarked_files_are_the_source(splits):
    for level in levels.LEVELS:
        for rel, data in levels.tree(STARTER, level, keep=wanted).items():
            assert not MARKER.search(data.decode(errors="replace")), (level, rel)
            source = (STARTER / rel).read_bytes()
            if rel not in splits or not splits[rel].changes:
                assert data == source, (level, rel)
    marked = {rel for rel, both in splits.items() if both.changes}
    assert {"main.py", "README.md", "notebooks/1.0-train-model.ipynb"} <= marked
    for level in levels.LEVELS:  # the data dictionary comes from the kit's data/ folder
        assert not MARKER.search(team_files(level)["data/README.md"].decode())


def without_markers(text: str) -> list[str]:
    """The lines of a source text without its marker lines and its exercise-only blocks."""
    kept, exercise_only = [], False
    for line in text.splitlines():
        if line.strip() in ("# EXERCISES BEGIN", "<!-- EXERCISES BEGIN"):
            exercise_only = True
        elif line.strip() in ("# EXERCISES END", "EXERCISES END -->"):
            exercise_only = False
        elif not (exercise_only or MARKER.search(line)):
            kept.append(line)
    return kept


def test_the_complete_level_is_the_source_with_its_marker_lines_left_out(splits):
    for rel, both in splits.items():
        source = (STARTER / rel).read_text()
        if rel.endswith(".ipynb"):
            cells = zip(
                json.loads(source)["cells"], json.loads(both.complete)["cells"], strict=True
            )
            for mine, complete in cells:
                assert (
                    without_markers("".join(mine["source"]))
                    == "".join(complete["source"]).splitlines()
                )
        else:
            assert without_markers(source) == both.complete.splitlines(), rel


# --- the leak: told at the complete level, to be found at the exercise level


def unpacked(tarball: bytes) -> dict[str, bytes]:
    """The files of a starter tarball, by path inside the starter."""
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        return {
            m.name.split("/", 1)[1]: tar.extractfile(m).read()
            for m in tar.getmembers()
            if m.isfile()
        }


@functools.cache
def team_files(level: str) -> dict[str, bytes]:
    """What a team's home gets at `level` (the tarball `users create` unpacks)."""
    return unpacked(starter_tarball(Settings(starter_level=level)))


def level_text(level: str, *names: str) -> str:
    """The text of some files of the starter a team gets at `level`, joined."""
    return "\n".join(team_files(level)[name].decode() for name in names)


def test_the_exercise_level_trains_on_every_column_and_never_explains_the_leak():
    code = level_text(
        levels.EXERCISES,
        "modules/train.py",
        "notebooks/1.0-train-model.ipynb",
        "README.md",
        "tests/test_train.py",
    )
    assert "collection_calls" not in code and "LEAK" not in code
    assert not re.search(r"\bleak", code, re.IGNORECASE)
    assert "if column != LABEL]" in code  # the notebook's features: every column but the label
    dictionary = level_text(levels.EXERCISES, "data/README.md")
    mentions = [line for line in dictionary.splitlines() if "collection_calls" in line]
    assert mentions == [
        "| `collection_calls` | integer | count | 0 – 30 | Calls from the collection department. |"
    ]
    assert "¹" not in dictionary and "after" not in dictionary.split("## Where it comes from")[1]


def test_the_complete_level_keeps_todays_explanation_of_the_leak():
    code = level_text(levels.COMPLETE, "modules/train.py", "notebooks/1.0-train-model.ipynb")
    assert 'LEAK = "collection_calls"' in code and "not in (LABEL, LEAK)" in code
    assert "## 2. The leak: a column we must not use" in code
    readme = level_text(levels.COMPLETE, "README.md")
    assert "the one column you must not use (the *leak*)" in readme
    footnote = level_text(levels.COMPLETE, "data/README.md").split("\n---\n", 1)[1]
    assert footnote.strip().startswith("¹ `collection_calls` counts the calls")


def test_the_readme_a_team_gets_names_the_files_with_exercises(gaps):
    readme = level_text(levels.EXERCISES, "README.md")
    rows = re.findall(r"^\| (\d) \| `([^`]+)`, `([^`(]+)", readme, re.MULTILINE)
    assert [(int(n), file) for n, file, _ in rows] == [(g.number, g.file) for g in gaps]
    for (_, file, function), gap in zip(rows, gaps, strict=True):
        name = function.split(".")[-1]
        assert f"def {name}(" in level_text(levels.COMPLETE, gap.file), (file, function)
    assert "## The two levels of this starter" not in readme
    complete = level_text(levels.COMPLETE, "README.md")
    assert "## The two levels of this starter" in complete and "| 1 | `main.py`" not in complete


# --- the exercise level as a team runs it


@pytest.fixture(scope="module")
def exercise_starter(tmp_path_factory) -> Path:
    """The exercise level written into a folder, with the training data, as a home has it."""
    folder = tmp_path_factory.mktemp("team") / "participant_starter"
    levels.write(STARTER, folder, levels.EXERCISES)
    (folder / "data" / "train_data.csv").write_bytes(TRAIN_CSV.read_bytes())
    return folder


def failed_tests(starter: Path, tmp_path: Path) -> dict[str, str]:
    """Run the starter's pytest; {failed test: its message, traceback and captured log}."""
    report = tmp_path / "report.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junit-xml={report}"]
        + ["-o", "junit_logging=all"],
        cwd=starter,
        capture_output=True,
        timeout=300,
    )
    failed = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is not None:
            text = [problem.get("message", ""), problem.text or ""]
            text += [(case.findtext(tag) or "") for tag in ("system-out", "system-err")]
            failed[f"{case.get('classname')}.{case.get('name')}"] = "\n".join(text)
    return failed


@pytest.mark.slow
def test_the_exercise_levels_failing_tests_name_each_gap_and_its_hint(
    exercise_starter, gaps, tmp_path
):
    failed = failed_tests(exercise_starter, tmp_path)
    assert failed, "the exercise level's tests must fail until the gaps are filled"
    for test, text in failed.items():
        assert re.search(r"Exercise \d: ", text), f"{test} fails without naming its exercise"
    messages = {test: text.split("\n", 1)[0] for test, text in failed.items()}
    for gap in gaps:
        named = [t for t, m in messages.items() if f"Exercise {gap.number}: {gap.hint}" in m]
        assert named, f"no failing test says exercise {gap.number} is missing"
    assert "tests.test_api.test_an_absurd_loan_amount_gets_a_prediction_not_the_fallback" in (
        failed
    )
    no_gap = ("tests.test_train.", "tests.test_docs.")  # these modules have no gap
    assert not [t for t in failed if t.startswith(no_gap)]


def refused_url() -> str:
    """A loopback URL where nothing listens."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/predict"


def selfcheck(starter: Path) -> str:
    """`python selfcheck.py` against an API that is not running: its first line."""
    done = subprocess.run(
        [sys.executable, "selfcheck.py", "--url", refused_url()],
        cwd=starter,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1  # nothing answers
    return done.stdout


@pytest.mark.slow  # runs the starter's selfcheck per exercise (about 10 s)
def test_selfcheck_names_the_next_open_exercise(tmp_path, splits, gaps):
    starter = tmp_path / "participant_starter"
    levels.write(STARTER, starter, levels.EXERCISES)
    first = gaps[0]
    assert selfcheck(starter).startswith(f"Next exercise: 1 in {first.file}:{first.line}: ")
    assert f"({EXERCISE_COUNT} open;" in selfcheck(starter)
    # The team writes exercise 1 (its solution here): selfcheck moves on to exercise 2.
    mine = [c for c in splits[first.file].changes if c.exercise == 1]
    path = starter / first.file
    path.write_text(markers.fill(first.file, path.read_text(), mine))
    second = gaps[1]
    assert selfcheck(starter).startswith(f"Next exercise: 2 in {second.file}:{second.line}: ")
    complete = tmp_path / "complete"
    levels.write(STARTER, complete, levels.COMPLETE)
    assert "exercise" not in selfcheck(complete).lower()


# --- a team's home: `users create --starter`


class Recorder:
    """An executor that records what it is asked to run (nothing runs)."""

    def __init__(self):
        self.calls: list[tuple[list[str], bytes | None]] = []

    def run(self, argv, stdin=None, timeout=None, check=True, root=True):
        self.calls.append((argv, stdin))
        return 0, "", ""


@pytest.mark.parametrize("level", levels.LEVELS)
def test_a_home_gets_the_starter_at_the_workshops_level(level):
    settings = Settings(starter_level=level)
    plan = TeamPlan(Team("Red", "team-red", "", None, 2), {}, Secrets())
    state = State({}, {}, {}, DbState(), {}, set(), set(), {})
    ex = Recorder()
    apply.copy_starter(ex, settings, plan, state)
    ((argv, stdin),) = ex.calls
    assert argv[:2] == ["env", "-i"] and "--reuid=team-red" in argv and "tar" in argv
    files = unpacked(stdin)
    expected = levels.tree(STARTER, level, keep=wanted)
    assert files.pop("data/train_data.csv") == TRAIN_CSV.read_bytes()
    dictionary = (STARTER.parent / "data" / "README.md").read_text()
    assert files.pop("data/README.md").decode() == levels.render("README.md", dictionary, level)
    assert files == expected
    assert ("Exercise 1: " in files["main.py"].decode()) == (level == levels.EXERCISES)


def test_a_starter_whose_markers_are_wrong_is_one_line(tmp_path):
    (tmp_path / "main.py").write_text("# EXERCISE 1 BEGIN: a hint that is long enough\nx = 1\n")
    (tmp_path / "data.csv").write_text("a\n1\n")
    settings = Settings(starter_dir=str(tmp_path), train_data=str(tmp_path / "data.csv"))
    with pytest.raises(AccountsError, match=r"main.py:1: 'EXERCISE 1 BEGIN: .*' is never closed"):
        starter_tarball(settings)


def test_the_levels_command_writes_a_level(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "game_server.accounts.levels", "exercises", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (
        "exercise 1: main.py:" in done.stdout and "exercise 5: modules/model_io.py:" in done.stdout
    )
    assert "Exercise 3: " in (tmp_path / "s" / "modules" / "database.py").read_text()


# --- the markers, one by one


PYTHON = '''def f(x):
    """Double x."""
    # EXERCISE 1 BEGIN: return twice x
    return 2 * x
    # EXERCISE 1 END


# COMPLETE BEGIN
LEAK = "calls"
# COMPLETE END
# EXERCISES BEGIN
# def g():
#
#     return "exercises only"
# EXERCISES END
NAME = "the complete level"
# EXERCISES REPLACE "the complete level" WITH "the exercise level"
'''


def test_each_marker_in_python():
    both = markers.split("m.py", PYTHON)
    assert both.complete == (
        'def f(x):\n    """Double x."""\n    return 2 * x\n\n\nLEAK = "calls"\n'
        'NAME = "the complete level"\n'
    )
    assert both.exercises == (
        'def f(x):\n    """Double x."""\n'
        '    raise NotImplementedError("Exercise 1: return twice x")\n'
        '\n\ndef g():\n\n    return "exercises only"\nNAME = "the exercise level"\n'
    )
    assert [c.exercise for c in both.changes] == [1, None, None, None]
    assert markers.fill("m.py", both.exercises, both.changes) == both.complete


def test_markdown_and_notebook_cells():
    markdown = (
        "Intro.\n<!-- COMPLETE BEGIN -->\nTold.\n<!-- COMPLETE END -->\n"
        "<!-- EXERCISES BEGIN\nFound.\nEXERCISES END -->\n| a | b¹ |\n"
        '<!-- EXERCISES REPLACE "b¹ |" WITH "b |" -->\n'
    )
    both = markers.split("README.md", markdown)
    assert both.complete == "Intro.\nTold.\n| a | b¹ |\n"
    assert both.exercises == "Intro.\nFound.\n| a | b |\n"
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None}
    notebook = {
        "cells": [
            {**cell, "source": ["x = 1\n", "# COMPLETE BEGIN\n", "y = 2\n", "# COMPLETE END"]},
            {"cell_type": "markdown", "metadata": {}, "source": ["# Title"]},
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    text = json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    both = markers.split("n.ipynb", text)
    assert json.loads(both.complete)["cells"][0]["source"] == ["x = 1\n", "y = 2"]
    assert json.loads(both.exercises)["cells"][0]["source"] == ["x = 1"]
    assert json.loads(both.exercises)["cells"][1]["source"] == ["# Title"]
    assert markers.fill("n.ipynb", both.exercises, both.changes) == both.complete


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        ("a.py", "# COMPLETE BEGIN\nx = 1\n", r"a.py:1: 'COMPLETE BEGIN' is never closed"),
        ("a.py", "x = 1\n# COMPLETE END\n", r"a.py:2: a marker that opens nothing"),
        (
            "a.py",
            "# COMPLETE BEGIN\n# EXERCISES BEGIN\n# EXERCISES END\n# COMPLETE END\n",
            r"a.py:2: a marker inside 'COMPLETE BEGIN': blocks do not nest",
        ),
        ("a.py", "# EXERCISES BEGIN\nx = 1\n# EXERCISES END\n", r"a.py:1: each line of the"),
        ("a.py", 'x = 1\nx = 1\n# EXERCISES REPLACE "x" WITH "y"\n', r"a.py:3: 'x' must be in"),
        ("a.md", "<!-- EXERCISE 1 BEGIN: hint -->\nx\n<!-- EXERCISE 1 END -->\n", r"for code"),
        ("a.md", "<!-- EXERCISES BEGIN\n```bash\nls\n```\nEXERCISES END -->\n", r"code fence"),
    ],
)
def test_a_marker_that_cannot_be_read_is_named_with_its_line(name, text, error):
    with pytest.raises(markers.MarkerError, match=error):
        markers.split(name, text)


def test_the_exercises_are_numbered_one_to_n(tmp_path):
    (tmp_path / "a.py").write_text("# EXERCISE 2 BEGIN: a hint\nx = 1\n# EXERCISE 2 END\n")
    with pytest.raises(levels.LevelError, match=r"numbered 1 to 1, once each: \[2\]"):
        levels.tree(tmp_path, levels.EXERCISES)
