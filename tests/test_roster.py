"""The roster: every bad row reported on its own line before anything changes."""

import pytest

from game_server.accounts.roster import RosterError, load_roster, parse_roster, slug, user_name


def test_good_roster_gives_teams_with_prefixed_slug_user_names():
    text = "name,members,ssh_key\nRed Team,Ann; Bob,\nthe_blue.ones,,ssh-ed25519 AAAAC3Nza me@x\n"
    teams = parse_roster(text, prefix="gstest-")
    assert [(t.name, t.user, t.line) for t in teams] == [
        ("Red Team", "gstest-red-team", 2),
        ("the_blue.ones", "gstest-the-blue-ones", 3),
    ]
    assert teams[0].members == "Ann; Bob" and teams[0].ssh_key is None
    assert teams[1].ssh_key == "ssh-ed25519 AAAAC3Nza me@x"


def test_every_bad_row_is_one_line_with_file_and_line():
    text = (
        "name,members,ssh_key\n"
        "Red,,\n"
        "red,,\n"  # duplicate (case-insensitive)
        "bad/name,,\n"  # a slash: no URL path for the team page
        + "x"
        * 40
        + ",,\n"  # game name fits, but the user name is over 32
        "Red!,,\n"  # a fine game name, but its user name is Red's
        "Red-,,\n"  # same slug as Red
        ",,\n"  # blank row: skipped
        "Green,,not a key\n"
        "Blue,,\n"
    )
    with pytest.raises(RosterError) as err:
        parse_roster(text, "r.csv", prefix="gstest-")
    lines = str(err.value).splitlines()
    assert len(lines) == 6, lines
    assert lines[0].startswith("r.csv:3: duplicate team name 'red'")
    assert lines[1].startswith("r.csv:4: bad team name 'bad/name'")
    assert lines[2].startswith("r.csv:5: user name 'gstest-xxxx") and "32" in lines[2]
    assert lines[3] == "r.csv:6: user name 'gstest-red' is the same as line 2's"
    assert lines[4] == "r.csv:7: user name 'gstest-red' is the same as line 2's"
    assert lines[5].startswith("r.csv:9: ssh_key is not one OpenSSH public key line")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "r.csv: the roster is empty"),
        ("\n \n", "r.csv: the roster is empty"),
        ("name,members\n", "r.csv: the roster has no teams"),
        ("team,who\nRed,Ann\n", "r.csv:1: the header must be name"),
    ],
)
def test_empty_or_headerless_roster_is_refused(text, message):
    with pytest.raises(RosterError) as err:
        parse_roster(text, "r.csv")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_reserved_and_foreign_system_users_are_refused_but_ours_are_kept():
    text = "name\nmin\nold\nmine\n"  # with the prefix "ad": admin, adold, admine
    with pytest.raises(RosterError) as err:
        parse_roster(text, prefix="ad", existing_users={"adold", "admine"}, ours={"admine"})
    assert str(err.value).splitlines() == [
        "roster.csv:2: user name 'admin' is reserved",
        "roster.csv:3: user name 'adold' belongs to an existing system user not created by us",
    ]
    kept = parse_roster("name\nmine\n", prefix="ad", existing_users={"admine"}, ours={"admine"})
    assert [t.user for t in kept] == ["admine"]


def test_bad_prefix_and_unreadable_file(tmp_path):
    with pytest.raises(RosterError, match="bad prefix '9x'"):
        parse_roster("name\nRed\n", prefix="9x")
    with pytest.raises(RosterError, match="cannot read the roster"):
        load_roster(str(tmp_path / "missing.csv"))
    (tmp_path / "bom.csv").write_text("\ufeffname\nRed\n", encoding="utf-8")
    assert load_roster(str(tmp_path / "bom.csv"))[0].user == "team-red"


def test_slug_and_user_name():
    assert slug("  Ünïcode Team 2! ") == "n-code-team-2"
    assert user_name("A.B", "team-") == "team-a-b"
