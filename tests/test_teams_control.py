"""The team registry (names, tokens, allow-list) and the game's control transitions."""

import pytest
import sqlalchemy as sa

from game_server.play import teams
from game_server.storage import control, database, games, schema, standings
from game_server.storage import teams as registry


@pytest.fixture
def engine(db_url):
    """A game database in the lobby with two phases and a loopback-only allow-list."""
    engine = database.make_engine(db_url)
    database.init_db(engine)
    with engine.begin() as conn:
        games.configure_game(
            conn,
            "test",
            "test.toml",
            {"allowed_hosts": ["127.0.0.1", "localhost"]},
            [
                {
                    "name": n,
                    "kind": "warmup",
                    "duration": 60.0,
                    "rate": 1.0,
                    "burst": 1,
                    "description": "",
                }
                for n in ("one", "two")
            ],
        )
    yield engine
    engine.dispose()


def test_add_prints_a_token_stored_only_as_its_hash(engine):
    token = teams.add_team(engine, "Team red-1", "http://127.0.0.1:9001/predict")
    assert len(token) >= 43
    with engine.connect() as conn:
        stored = conn.execute(sa.select(schema.teams.c.token_hash)).scalar_one()
        assert stored == registry.hash_token(token) and token not in stored
        assert registry.authenticate(conn, token)["name"] == "Team red-1"
        assert registry.authenticate(conn, token + "x") is None
        assert registry.authenticate(conn, "") is None
        assert "token_hash" not in registry.list_teams(conn)[0]


@pytest.mark.parametrize(
    "name", ["", "x" * 41, "bad\nname", "tab\tname", " padded", "trailing ", "a/b", "nul\x00"]
)
def test_bad_team_names_are_refused(engine, name):
    with pytest.raises(registry.TeamError, match="bad team name"):
        teams.add_team(engine, name, "http://127.0.0.1:9001/predict")


def test_duplicate_names_are_refused_whatever_the_case(engine):
    teams.add_team(engine, "red", "http://127.0.0.1:9001/predict")
    with pytest.raises(registry.TeamError, match="exists already"):
        teams.add_team(engine, "RED", "http://127.0.0.1:9002/predict")


def test_a_host_off_the_allow_list_is_refused_with_one_line(engine):
    with pytest.raises(registry.TeamError) as info:
        teams.add_team(engine, "red", "http://10.1.2.3:9001/predict")
    assert "allow-list" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(registry.TeamError, match="protocol"):
        teams.add_team(engine, "red", "http://127.0.0.1:9001", protocol="grpc")


def test_disable_stops_a_team_from_being_active(engine):
    teams.add_team(engine, "red", "http://127.0.0.1:9001/predict")
    teams.add_team(engine, "blue", "http://127.0.0.1:9002/predict")
    registry.set_active(engine, "red", False)
    with engine.connect() as conn:
        assert [t["name"] for t in registry.active_teams(conn)] == ["blue"]
    with pytest.raises(registry.TeamError, match="no team called"):
        registry.set_active(engine, "green", False)


def state(engine):
    """(state, phase_index, frozen) of the game."""
    with engine.connect() as conn:
        g = games.game_row(conn)
    return g.state, g.phase_index, g.frozen


def test_the_whole_lifecycle(engine):
    for action, expected in [
        ("start", ("running", 0, False)),
        ("pause", ("paused", 0, False)),
        ("resume", ("running", 0, False)),
        ("freeze", ("running", 0, True)),
        ("next-phase", ("running", 1, True)),
        ("unfreeze", ("running", 1, False)),
        ("next-phase", ("finished", 1, False)),
    ]:
        control.apply(engine, action, "tester")
        assert state(engine) == expected, action
    with engine.connect() as conn:
        log = conn.execute(sa.select(schema.control_log)).mappings().all()
    assert [r["action"] for r in log][:2] == ["start", "pause"]
    assert all(r["ok"] and r["actor"] == "tester" for r in log)


@pytest.mark.parametrize(
    "before, action",
    [
        ([], "pause"),
        ([], "resume"),
        ([], "next-phase"),
        ([], "freeze"),
        ([], "unfreeze"),
        (["start"], "start"),
        (["start"], "resume"),
        (["start", "pause"], "pause"),
        (["start", "freeze"], "freeze"),
        (["finish"], "finish"),
        (["finish"], "start"),
        (["start", "finish"], "resume"),
    ],
)
def test_invalid_transitions_are_refused_and_logged(engine, before, action):
    for done in before:
        control.apply(engine, done, "tester")
    was = state(engine)
    with pytest.raises(control.ControlError, match="^cannot "):
        control.apply(engine, action, "tester")
    assert state(engine) == was
    with engine.connect() as conn:
        last = (
            conn.execute(sa.select(schema.control_log).order_by(schema.control_log.c.id.desc()))
            .mappings()
            .first()
        )
    assert (last["action"], last["ok"]) == (action, False)


def test_pause_stops_the_phase_clock(engine):
    control.apply(engine, "start", "tester")
    with engine.begin() as conn:  # as if the phase had run 20 s
        conn.execute(
            schema.games.update().values(phase_resumed_at=schema.games.c.phase_resumed_at - 20)
        )
    control.apply(engine, "pause", "tester")
    with engine.connect() as conn:
        g = games.game_row(conn)
    assert g.phase_resumed_at is None
    assert 20 <= g.phase_elapsed < 21


def test_freeze_serves_a_snapshot_and_finish_reveals(engine):
    teams.add_team(engine, "red", "http://127.0.0.1:9001/predict")
    control.apply(engine, "start", "tester")
    control.apply(engine, "freeze", "tester")
    with engine.begin() as conn:  # red scores after the freeze
        conn.execute(
            schema.team_totals.insert().values(
                team_id=1,
                phase_index=0,
                points=5,
                correct=5,
                wrong=0,
                failed=0,
                latency_sum=0.0,
                latency_count=0,
            )
        )
    with engine.connect() as conn:
        frozen = standings.leaderboard(conn)
    assert frozen["frozen"] is True and frozen["teams"][0]["points"] == 0
    control.apply(engine, "finish", "tester")
    with engine.connect() as conn:
        final = standings.leaderboard(conn)
    assert final["frozen"] is False and final["teams"][0]["points"] == 5


def test_the_clock_advances_only_a_phase_that_ran_its_time(engine):
    control.apply(engine, "start", "tester")
    assert control.advance_by_clock(engine, 0, 60.0) is None  # 60 s have not passed
    assert control.advance_by_clock(engine, 0, 0.0).phase_index == 1
    assert control.advance_by_clock(engine, 0, 0.0) is None  # phase 0 is over already
    assert control.advance_by_clock(engine, 1, 0.0).state == "finished"
