"""The participant starter's own test suite passes, run as a participant runs it."""

import subprocess
import sys

import pytest
from starter_helpers import STARTER


@pytest.mark.slow
def test_the_starters_own_tests_pass():
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=STARTER,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout
