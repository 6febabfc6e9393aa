"""One rule for team names (roster, `teams add`, the admin page): what breaks is refused."""

import pytest

from game_server.common.team_names import NAME_MAX, looks_like_a_name, name_ok


@pytest.mark.parametrize(
    "name",
    ["red", "Los Niños", "R&D!", "a-b", "<img src=x onerror=alert(1)>", "x" * NAME_MAX, "a<br>b"],
)
def test_printable_names_are_welcome(name):
    assert name_ok(name) and looks_like_a_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "a\x00b",  # NUL: PostgreSQL refuses it in text
        "a\x7fb",  # DEL
        "a\x85b",  # a C1 control (NEL)
        "a\tb",
        "a\u202eb",  # right-to-left override (a format character)
        "a\ud800b",  # a lone surrogate
    ],
)
def test_control_characters_are_refused(name):
    assert not name_ok(name) and not looks_like_a_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "Colon:Team",  # useradd refuses ':' in the account's comment
        "-h",  # read as an option by a command line
        "--",
        "a/b",  # the team page's URL
        " red",
        "red ",
        "",
        "x" * (NAME_MAX + 1),
    ],
)
def test_names_that_break_a_command_or_a_url_are_refused(name):
    assert not name_ok(name)
