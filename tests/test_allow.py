"""`game-server allow`: the allow-list extended by one command, taken by the running game.

The fallback when the server or the network fails (docs/INSTRUCTOR.md): teams serve from
their laptops on another network, and the instructor allows it without a restart.
"""

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from engine_helpers import fast_game, peeking, play
from readme_blocks import programs, server_blocks, words
from team_apis import TeamAPIs

from game_server.cli.main import main
from game_server.play import loop as game
from game_server.play import teams
from game_server.storage import control, database, schema

FAR = "127.0.0.2"  # a loopback address the tests' game file does not list (127.0.0.1 only)


@pytest.fixture
def apis():
    """A place to start team APIs; closed after the test."""
    servers = TeamAPIs()
    yield servers
    servers.close()


def cli(url: str, *args: str):
    """`game-server --db url ...` as typed; its result."""
    return CliRunner().invoke(main, ["--log-level", "WARNING", "--db", url, *args])


def test_allow_lets_the_running_game_call_a_host_it_refused(sqlite_url, apis, keep_logging):
    engine = database.make_engine(sqlite_url)
    fast = fast_game()
    phases = tuple(dataclasses.replace(p, duration=4.0, rate=10.0) for p in fast.phases)
    game_file = dataclasses.replace(fast, phases=phases)
    database.prepare_game(engine, game_file)
    teams.add_team(engine, "near", apis.start(peeking(engine)).url)
    far_url = f"http://{FAR}:{apis.start(peeking(engine), host=FAR).port}/predict"
    refused = cli(sqlite_url, "teams", "add", "laptop", "--url", far_url)
    assert refused.exit_code == 1
    assert refused.output.count("\n") == 1 and "is not on the allow-list" in refused.output
    # A team registered under a wider allow-list (say, before the game file was edited):
    # the game refuses to call it until its host is allowed.
    with engine.begin() as conn:
        conn.execute(
            schema.teams.insert().values(
                name="far",
                url=far_url,
                protocol="native",
                token_hash="f" * 64,
                active=True,
                created_at=time.time(),
            )
        )
    control.apply(engine, "start", "tester")
    marks: dict[str, object] = {}

    async def during(t: float) -> None:
        if t > 2.0 and "allowed" not in marks:
            marks["allowed"] = time.time()
            marks["output"] = (await asyncio.to_thread(cli, sqlite_url, "allow", FAR)).output
        if t > 3.0 and "added" not in marks:
            marks["added"] = await asyncio.to_thread(
                cli, sqlite_url, "teams", "add", "laptop", "--url", far_url
            )

    asyncio.run(play(game.Game(engine, game_file), engine, during=during, limit=20))
    assert marks["output"] == f"allow-list: 127.0.0.1, {FAR}\n"
    assert marks["added"].exit_code == 0, marks["added"].output  # type: ignore[attr-defined]
    r, q, t = schema.results, schema.requests, schema.teams
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.name, q.c.sent_at, r.c.outcome, r.c.reason)
            .join(t, t.c.id == r.c.team_id)
            .join(q, q.c.seq == r.c.seq)
        ).all()
    allowed_at = float(marks["allowed"])  # type: ignore[arg-type]
    before = {(o, why) for name, sent, o, why in rows if name == "far" and sent < allowed_at}
    after = [o for name, sent, o, _ in rows if name == "far" and sent > allowed_at + 1.5]
    assert before == {("failed", "host_not_allowed")}
    assert after and set(after) == {"correct"}  # within a second of the command, no restart
    assert {o for name, _, o, _ in rows if name == "laptop"} == {"correct"}
    assert {o for name, _, o, _ in rows if name == "near"} == {"correct"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("192.168.1.0/33", "bad network '192.168.1.0/33'"),
        ("not a host!", "'not a host!' is not a host name, IP or network"),
        ("", "empty entry"),
    ],
)
def test_bad_entries_are_one_line_errors_and_nothing_is_stored(
    sqlite_url, entry, message, keep_logging
):
    engine = database.make_engine(sqlite_url)
    database.prepare_game(engine, fast_game())
    result = cli(sqlite_url, "allow", "10.0.0.0/8", entry)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and message in result.output
    assert cli(sqlite_url, "allow").output == "allow-list: 127.0.0.1\n"


def test_added_entries_outlive_a_restart_with_the_game_file(sqlite_url, keep_logging):
    engine = database.make_engine(sqlite_url)
    database.prepare_game(engine, fast_game())
    assert cli(sqlite_url, "allow", "192.168.1.0/24", "team1.example.org").exit_code == 0
    assert cli(sqlite_url, "allow", "192.168.1.7").exit_code == 0  # added once more
    database.prepare_game(engine, fast_game())  # `game-server run --game ...` again
    listed = "127.0.0.1, 192.168.1.0/24, team1.example.org, 192.168.1.7"
    assert cli(sqlite_url, "allow").output == f"allow-list: {listed}\n"
    with engine.connect() as conn:
        assert ", ".join(teams.allowed_hosts(conn)) == listed


def test_allow_without_a_game_says_how_to_make_one(tmp_path, keep_logging):
    result = cli(f"sqlite:///{tmp_path / 'none.sqlite'}", "allow", "10.0.0.0/8")
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "game-server init" in result.output


def test_the_guides_allow_commands_work_as_typed(sqlite_url, keep_logging):
    """docs/INSTRUCTOR.md's "allow-list mid-game" block, each line as typed (the game's
    database from GAME_DATABASE_URL, as on the server)."""
    guide = (Path(__file__).resolve().parents[1] / "docs" / "INSTRUCTOR.md").read_text()
    part = guide.split("<!-- cheatsheet: The allow-list mid-game -->", 1)[1]
    block = server_blocks(part.split("<!-- /cheatsheet -->", 1)[0])[0]
    assert [programs(c) for c in block.commands] == [["game-server"]] * 2
    database.prepare_game(database.make_engine(sqlite_url), fast_game())
    outputs = []
    for command in block.commands:
        args = words(command)[1:]
        result = CliRunner().invoke(
            main, ["--log-level", "WARNING", *args], env={"GAME_DATABASE_URL": sqlite_url}
        )
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert outputs == ["allow-list: 127.0.0.1, 192.168.1.0/24\n"] * 2
