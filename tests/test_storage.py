"""Storage on SQLite and PostgreSQL: round writes, running totals, void, feedback, queries."""

import dataclasses
import time

import pytest
import sqlalchemy as sa
from engine_helpers import next_seq, request_row, result

from game_server.common import records
from game_server.play import teams
from game_server.storage import database, games, queries, reveal, schema, standings, writes


@pytest.fixture
def engine(db_url):
    """A fresh game database with two teams (ids 1 and 2) and two phases."""
    engine = database.make_engine(db_url)
    database.init_db(engine)
    with engine.begin() as conn:
        games.configure_game(
            conn,
            "test",
            "test.toml",
            {"allowed_hosts": ["127.0.0.1"]},
            [
                {"name": n, "kind": k, "duration": 10.0, "rate": 5.0, "burst": 1, "description": ""}
                for n, k in (("warm-up", "warmup"), ("messy", "messy"))
            ],
        )
    teams.add_team(engine, "red", "http://127.0.0.1:9001/predict")
    teams.add_team(engine, "blue", "http://127.0.0.1:9002/predict")
    yield engine
    engine.dispose()


def store(engine, rows, rounds):
    """Insert `rows` as sent, score `rounds`, then reveal the visible labels, like the loop."""
    with engine.begin() as conn:
        writes.insert_requests(conn, rows)
    with engine.begin() as conn:
        writes.store_rounds(conn, rounds)
    with engine.begin() as conn:
        reveal.reveal_labels(conn)


def totals(engine):
    """team name -> the leaderboard row."""
    with engine.connect() as conn:
        return {t["name"]: t for t in standings.leaderboard_teams(conn)["teams"]}


def test_init_is_idempotent_and_sqlite_uses_wal(engine, db_url):
    assert database.init_db(engine) is False
    with engine.connect() as conn:
        assert games.game_row(conn).state == "lobby"
        if db_url.startswith("sqlite"):
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_the_game_row_has_every_column_of_the_table_typed(engine):
    names = [f.name for f in dataclasses.fields(games.GameRow)]
    assert names == list(schema.games.c.keys())  # a new column is added to the dataclass too
    with engine.connect() as conn:
        g = games.game_row(conn)
    assert isinstance(g, games.GameRow) and g.phase_index == 0 and g.frozen is False
    assert g.settings == {"allowed_hosts": ["127.0.0.1"]} and g.name == "test"
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.state = "running"  # type: ignore[misc]


def test_missing_tables_is_a_clear_error(db_url):
    engine = database.make_engine(db_url)
    with engine.connect() as conn, pytest.raises(games.NotInitialised, match="game-server init"):
        games.game_row(conn)


def test_rounds_update_results_and_running_totals(engine):
    rows = [request_row(1, 0, label=1), request_row(2, 0, label=0), request_row(3, 1, label=1)]
    store(
        engine,
        rows,
        [
            records.ScoredRound(
                1, 0, 0.8, 0.2, [result(1, "correct", pred=1), result(2, "wrong", pred=0)]
            ),
            records.ScoredRound(
                2,
                0,
                0.8,
                0.8,
                [result(1, "correct", pred=0), result(2, "failed", "timeout", None, 1000.0, None)],
            ),
        ],
    )
    store(
        engine,
        [],
        [
            records.ScoredRound(
                3,
                1,
                0.8,
                0.2,
                [
                    result(1, "failed", "invalid_json", status=200),
                    result(2, "failed", "connect_error", latency=1.0, status=None),
                ],
            )
        ],
    )
    board = totals(engine)
    assert (board["red"]["points"], board["red"]["correct"], board["red"]["failed"]) == (1, 2, 1)
    assert board["red"]["failures"] == {"invalid_json": 1}
    assert (board["blue"]["points"], board["blue"]["wrong"], board["blue"]["failed"]) == (-2, 1, 2)
    assert board["blue"]["failures"] == {"timeout": 1, "connect_error": 1}
    # latency counts answers and timeouts, not refused connections
    assert board["blue"]["latency_mean"] == pytest.approx((10.0 + 1000.0) / 2)
    assert [t["name"] for t in sorted(board.values(), key=lambda t: t["rank"])] == ["red", "blue"]
    with engine.connect() as conn:
        ref = standings.leaderboard_teams(conn)["reference"]
        statuses = conn.execute(sa.select(schema.requests.c.status)).scalars().all()
        per_phase = conn.execute(
            sa.select(schema.team_totals.c.phase_index, schema.team_totals.c.points)
            .where(schema.team_totals.c.team_id == 1)
            .order_by(schema.team_totals.c.phase_index)
        ).all()
        sums = conn.execute(
            sa.select(schema.results.c.team_id, sa.func.sum(schema.results.c.points)).group_by(
                schema.results.c.team_id
            )
        ).all()
    assert ref == {
        "requests": 3,
        "revealed": 3,
        "void": 0,
        "oracle_points": 2.4,
        "baseline_points": 1.2,
        "skipped": {},  # no round skipped: not overloaded, no advice
        "overloaded": False,
        "advice": None,
    }
    assert statuses == ["scored"] * 3
    assert [tuple(r) for r in per_phase] == [(0, 2), (1, -1)]
    assert {t: int(p) for t, p in sums} == {1: board["red"]["points"], 2: board["blue"]["points"]}


def test_a_round_is_never_counted_twice(engine):
    store(
        engine,
        [request_row(1)],
        [records.ScoredRound(1, 0, 0.8, 0.2, [result(1, "correct", pred=1)])],
    )
    with pytest.raises(RuntimeError, match="not `sent`"), engine.begin() as conn:
        writes.store_rounds(
            conn, [records.ScoredRound(1, 0, 0.8, 0.2, [result(1, "correct", pred=1)])]
        )
    assert totals(engine)["red"]["points"] == 1


def test_void_counts_for_nobody_and_next_seq_goes_on(engine):
    store(
        engine,
        [request_row(1), request_row(2), request_row(3)],
        [records.ScoredRound(1, 0, 0.8, 0.2, [result(1, "correct", pred=1)])],
    )
    with engine.begin() as conn:
        assert writes.void_requests(conn) == 2
        assert writes.void_requests(conn) == 0
        assert next_seq(conn) == 4
        ref = standings.leaderboard_teams(conn)["reference"]
    assert ref["requests"] == 1 and ref["void"] == 2
    assert totals(engine)["red"]["points"] == 1


def test_nul_bytes_in_a_body_excerpt_are_stored(engine):
    r = result(1, "failed", "invalid_json")
    r = dataclasses.replace(r, score=dataclasses.replace(r.score, body_excerpt="a\x00b"))
    store(engine, [request_row(1)], [records.ScoredRound(1, 0, 0.8, 0.2, [r])])
    with engine.connect() as conn:
        got = queries.team_results(conn, 1, 10)
    assert got[0]["body_excerpt"] == "a\\x00b"


def test_team_results_hide_outcome_until_the_label_is_revealed(engine):
    now = time.time()
    rows = [request_row(1, delay=0.0, sent_at=now - 5), request_row(2, delay=60.0, sent_at=now)]
    store(
        engine,
        rows,
        [
            records.ScoredRound(1, 0, 0.8, 0.2, [result(1, "correct", pred=1)]),
            records.ScoredRound(2, 0, 0.8, 0.2, [result(1, "wrong", pred=0)]),
        ],
    )
    with engine.connect() as conn:
        newest, oldest = queries.team_results(conn, 1, 10)
    assert (newest["seq"], newest["outcome"], newest["points"], newest["pred"]) == (
        2,
        "answered",
        None,
        0,
    )
    assert (oldest["seq"], oldest["outcome"], oldest["points"]) == (1, "correct", 1)


def feedback_walk(engine, team_name, limit=2, now=None):
    """Follow the cursor until it stops; every item returned."""
    with engine.connect() as conn:
        team = queries.team_by_name(conn, team_name)
        items, cursor = [], 0
        while True:
            page = queries.feedback(conn, team, cursor, limit, now)
            items += page["items"]
            if page["cursor"] == cursor:
                return items, cursor
            assert page["cursor"] > cursor
            cursor = page["cursor"]


def test_feedback_returns_only_a_fully_visible_prefix(engine):
    now = time.time()
    rows = [request_row(s, sent_at=now - 10, delay=5.0) for s in (1, 2, 3, 4)]
    rows.append(request_row(5, sent_at=now, delay=5.0))  # not visible yet
    rows.append(request_row(6, sent_at=now - 10, delay=0.0))  # visible, but after seq 5
    with engine.begin() as conn:
        writes.insert_requests(conn, rows)
    # seq 2 is still in flight: nothing from 2 on may be returned yet
    with engine.begin() as conn:
        writes.store_rounds(
            conn,
            [
                records.ScoredRound(
                    s, 0, 0.8, 0.2, [result(1, "correct", pred=1), result(2, "wrong", pred=0)]
                )
                for s in (1, 3, 4, 5, 6)
            ],
        )
    items, cursor = feedback_walk(engine, "red")
    assert [i["seq"] for i in items] == [1] and cursor == 1
    with engine.begin() as conn:
        writes.store_rounds(
            conn,
            [
                records.ScoredRound(
                    2, 0, 0.8, 0.2, [result(1, "failed", "timeout", latency=300.0, status=None)]
                )
            ],
        )
    items, cursor = feedback_walk(engine, "red")
    assert [i["seq"] for i in items] == [1, 2, 3, 4] and cursor == 4
    assert items[1]["outcome"] == "failed" and items[1]["pred"] is None
    # everything eventually
    items, cursor = feedback_walk(engine, "red", now=now + 10)
    assert [i["seq"] for i in items] == [1, 2, 3, 4, 5, 6]
    first = items[0]
    assert first["features"] == rows[0]["features"] and first["label"] == 1
    assert (first["pred"], first["outcome"], first["id"]) == (1, "correct", "t-0000001")


def test_feedback_shows_a_team_only_its_own_answers(engine):
    now = time.time()
    with engine.begin() as conn:
        writes.insert_requests(conn, [request_row(s, sent_at=now - 10) for s in (1, 2)])
        writes.store_rounds(
            conn,
            [
                records.ScoredRound(
                    1, 0, 0.8, 0.2, [result(1, "correct", pred=1), result(2, "wrong", pred=0)]
                ),
                records.ScoredRound(
                    2, 0, 0.8, 0.2, [result(2, "correct", pred=1)]
                ),  # red was not asked
            ],
        )
    red, _ = feedback_walk(engine, "red")
    blue, _ = feedback_walk(engine, "blue")
    assert [(i["seq"], i["pred"]) for i in red] == [(1, 1)]
    assert [(i["seq"], i["pred"]) for i in blue] == [(1, 0), (2, 1)]


def test_void_requests_appear_in_feedback_without_an_outcome(engine):
    sent = time.time() + 1  # after the teams were registered
    with engine.begin() as conn:
        writes.insert_requests(conn, [request_row(1, sent_at=sent), request_row(2, sent_at=sent)])
        writes.store_rounds(
            conn, [records.ScoredRound(1, 0, 0.8, 0.2, [result(1, "correct", pred=1)])]
        )
        writes.void_requests(conn)
    items, cursor = feedback_walk(engine, "red", now=sent + 1)
    assert [(i["seq"], i["status"], i["outcome"]) for i in items] == [
        (1, "scored", "correct"),
        (2, "void", None),
    ]
    assert cursor == 2


def test_history_samples_points_and_reference(engine):
    store(
        engine,
        [request_row(1)],
        [
            records.ScoredRound(
                1,
                0,
                0.8,
                0.2,
                [result(1, "correct", pred=1), result(2, "failed", "timeout", status=None)],
            )
        ],
    )
    with engine.begin() as conn:
        writes.sample_history(conn, 100.0)
        writes.sample_history(conn, 105.0)
        hist = standings.history(conn, since=101.0)
    assert hist["teams"] == {"red": [[105.0, 1]], "blue": [[105.0, -1]]}
    assert hist["oracle"] == [[105.0, 0.8]] and hist["baseline"] == [[105.0, 0.2]]


def test_game_clock_reports_phase_and_time_left(engine):
    now = time.time()
    with engine.begin() as conn:
        conn.execute(
            schema.games.update().values(
                state="running", phase_index=0, phase_elapsed=4.0, phase_resumed_at=now - 1.0
            )
        )
        clock = standings.game_clock(conn, now)
    assert clock["state"] == "running" and clock["phase"]["name"] == "warm-up"
    assert clock["phase"]["time_left"] == pytest.approx(5.0)
    assert clock["time_left"] == pytest.approx(15.0)


def test_percentile_nearest_rank():
    assert records.percentile([], 0.5) is None
    assert records.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert records.percentile(list(range(1, 101)), 0.95) == 95
