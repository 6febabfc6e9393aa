"""`logs.first_line`: the one way an error becomes one line (log records, one-line errors)."""

import pytest

from game_server.common.logs import first_line


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (ValueError("bad value\nTraceback detail"), "bad value"),
        (ValueError("\n\n  indented first  \nsecond"), "indented first"),
        (ValueError(), "ValueError"),  # no message: the type says what happened
        ("", ""),
        ("psql: error: refused\nis the server running?", "psql: error: refused"),
    ],
)
def test_the_first_non_empty_line_or_the_type(error, line):
    assert first_line(error) == line


def test_a_long_line_is_cut_at_the_limit():
    assert first_line(RuntimeError("x" * 500)) == "x" * 200
    assert first_line(RuntimeError("x" * 500), 10) == "x" * 10
