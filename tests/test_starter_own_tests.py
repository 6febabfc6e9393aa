"""The participant starter's own test suite passes at the complete level, run as a participant
runs it (the exercise level's fail, each naming its gap: tests/test_starter_levels.py)."""

import subprocess
import sys

import pytest
from starter_helpers import copy_starter


@pytest.mark.slow
def test_the_starters_own_tests_pass(tmp_path):
    starter = copy_starter(tmp_path / "participant_starter")  # the complete level
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=starter,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout
