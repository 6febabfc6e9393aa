"""The deck's Python code runs as shown (issue 24): each ```python block of slides/deck.md
runs after the ones before it (a slide may go on from the one before), in a folder that
holds the training data and, from the start, the model the saving slides save.

A block that cannot run alone is marked on the line before its fence with
`<!-- illustrative: why -->`; there are few, and each says why.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DECK = ROOT / "slides" / "deck.md"
STARTER = ROOT / "participant_starter"
BLOCK = re.compile(r"(?:^(<!-- illustrative: [^>]+ -->)\n)?^```python\n(.*?)^```$", re.M | re.S)


def blocks() -> list[tuple[str | None, str]]:
    """(illustrative marker or None, code) of every Python block of the deck, in order."""
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(DECK.read_text(encoding="utf-8"))]


def runnable() -> list[str]:
    """The blocks that must run."""
    return [code for marker, code in blocks() if marker is None]


def run(code: str, folder: Path) -> subprocess.CompletedProcess:
    """Run `code` as a script in `folder` (the starter's modules importable)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(STARTER)},
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A folder with data/train_data.csv and the model the saving slides save."""
    here = tmp_path_factory.mktemp("deck")
    (here / "data").mkdir()
    (here / "models").mkdir()
    (here / "data" / "train_data.csv").symlink_to(ROOT / "data" / "train_data.csv")
    saving = [code for code in runnable() if "model.fit(" in code or "joblib.dump(" in code]
    assert len(saving) == 2, "the saving slides: a pipeline fitted, then dumped"
    done = run("\n".join(saving), here)
    assert done.returncode == 0, done.stderr
    assert (here / "models" / "model.pkl").stat().st_size > 1000
    return here


def test_few_blocks_are_illustrative_and_each_says_why():
    marked = [marker for marker, _ in blocks() if marker]
    assert len(blocks()) >= 10 and len(marked) <= 3, marked


@pytest.mark.parametrize("index", range(len(runnable())))
def test_each_python_block_of_the_deck_runs(folder, index):
    code = runnable()[index]
    before = "\n".join(runnable()[:index])
    check = ""
    if "app = Flask(" in code:  # the smallest API answers a request, as the slide says
        check = (
            "\nreply = app.test_client().post('/predict', json={'id': 'a', 'features': "
            "{'age': 35, 'income': 42000, 'employment_type': 'employed'}})"
            "\nassert reply.status_code == 200 and reply.get_json()['pred'] in (0, 1)"
        )
    done = run(f"{before}\n{code}{check}", folder)
    assert done.returncode == 0, f"{code}\n{done.stderr}"
