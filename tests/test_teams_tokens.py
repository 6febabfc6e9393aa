"""`teams add --json`, `teams enable` and `teams token` (rotation), through the real CLI."""

import json

import pytest
from click.testing import CliRunner

from game_server.cli.main import main
from game_server.storage import database, teams


@pytest.fixture
def cli(db_url):
    """Invoke `game-server --db <a fresh, initialised game database> ...`."""
    runner = CliRunner()
    assert runner.invoke(main, ["--db", db_url, "init", "--game", "demo"]).exit_code == 0

    def invoke(*args):
        return runner.invoke(main, ["--db", db_url, *args])

    invoke.url = db_url
    return invoke


def authenticated(db_url: str, token: str) -> str | None:
    """The name of the team `token` belongs to, or None."""
    engine = database.make_engine(db_url)
    try:
        with engine.connect() as conn:
            row = teams.authenticate(conn, token)
    finally:
        engine.dispose()
    return row and row["name"]


def test_add_json_prints_the_token_once_as_an_object(cli):
    url = "http://127.0.0.1:9001/predict"
    out = cli("teams", "add", "Red Team", "--url", url, "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert set(doc) == {"name", "token", "url", "protocol"}
    assert (doc["name"], doc["url"], doc["protocol"]) == ("Red Team", url, "native")
    assert authenticated(cli.url, doc["token"]) == "Red Team"
    plain = cli("teams", "add", "Blue", "--url", "http://127.0.0.1:9002/predict")
    assert plain.stdout.startswith("team Blue added; its token (shown once, keep it): ")
    refused = cli("teams", "add", "red team", "--url", url, "--json")  # errors stay one line
    assert refused.exit_code == 1 and refused.output.count("\n") == 1 and "exists" in refused.output


def test_token_rotation_retires_the_old_token(cli):
    old = json.loads(
        cli("teams", "add", "Red", "--url", "http://127.0.0.1:9001/p", "--json").stdout
    )
    out = cli("teams", "token", "Red", "--json")
    assert out.exit_code == 0, out.output
    new = json.loads(out.stdout)
    assert new["name"] == "Red" and new["token"] != old["token"] and len(new["token"]) >= 43
    assert authenticated(cli.url, new["token"]) == "Red"
    assert authenticated(cli.url, old["token"]) is None
    plain = cli("teams", "token", "Red")
    token = plain.stdout.strip().rpartition(": ")[2]
    assert authenticated(cli.url, token) == "Red" and authenticated(cli.url, new["token"]) is None
    missing = cli("teams", "token", "Green")
    assert missing.exit_code == 1 and "no team called 'Green'" in missing.output


def test_enable_brings_a_disabled_team_back(cli):
    cli("teams", "add", "Red", "--url", "http://127.0.0.1:9001/p")
    assert cli("teams", "disable", "Red").exit_code == 0
    listed = json.loads(cli("teams", "list", "--json").stdout)
    assert listed[0]["active"] is False and listed[0]["disabled_at"]
    out = cli("teams", "enable", "Red")
    assert out.exit_code == 0 and out.stdout == "team Red enabled\n"
    listed = json.loads(cli("teams", "list", "--json").stdout)
    assert listed[0]["active"] is True and listed[0]["disabled_at"] is None
    missing = cli("teams", "enable", "Green")
    assert missing.exit_code == 1 and "no team called 'Green'" in missing.output
