"""The game bends and never breaks (GAME.md §9, issue 22): a failing task, a database
outage (a locked SQLite file; PostgreSQL refusing connections, with its open ones
terminated), overload, and the exit status of `game-server run`."""

import asyncio
import dataclasses
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from conftest import PG_ADMIN_URL
from engine_helpers import fast_game, play
from team_apis import TeamAPIs, delayed, json_answer

from game_server.play import loop as game
from game_server.play import teams
from game_server.play.shedding import DATABASE_DOWN, OVERLOAD, Admission
from game_server.play.supervise import supervised
from game_server.storage import control, database, games, reveal, schema, skips
from game_server.web.app import create_app


@pytest.fixture
def apis():
    """A place to start team APIs; closed after the test."""
    servers = TeamAPIs()
    yield servers
    servers.close()


def long_game(duration: float, rate: float = 10.0, burst: int = 1, timeout: float = 0.3):
    """The fast game with one phase of `duration` seconds (the second one stays short)."""
    g = fast_game(timeout=timeout)
    first = dataclasses.replace(g.phases[0], duration=duration, rate=rate, burst=burst)
    return dataclasses.replace(g, phases=(first, *g.phases[1:]))


def results_per_round(engine: sa.Engine) -> list[tuple[int, int, int]]:
    """(seq, team, results stored) for every stored result."""
    r = schema.results.c
    with engine.connect() as conn:
        query = sa.select(r.seq, r.team_id, sa.func.count()).group_by(r.seq, r.team_id)
        return [tuple(row) for row in conn.execute(query)]


def statuses(engine: sa.Engine) -> set[str]:
    """The statuses of the stored requests."""
    with engine.connect() as conn:
        return set(conn.execute(sa.select(schema.requests.c.status)).scalars())


def stored_after(engine: sa.Engine, at: float) -> int:
    """Results of rounds sent after wall time `at`."""
    q = schema.requests.c
    with engine.connect() as conn:
        query = (
            sa.select(sa.func.count())
            .select_from(schema.results.join(schema.requests))
            .where(q.sent_at > at)
        )
        return int(conn.execute(query).scalar_one())


def test_supervised_logs_each_distinct_error_once_and_restarts(caplog):
    calls = []

    async def body():
        calls.append(1)
        if len(calls) <= 3:
            raise RuntimeError("database is locked")
        if len(calls) == 4:
            raise ValueError("another fault")

    with caplog.at_level(logging.ERROR, "game_server.play.supervise"):
        asyncio.run(supervised("reveal", body, backoff=(0.01,)))
    lines = [r.getMessage() for r in caplog.records]
    assert len(calls) == 5  # restarted after each failure, ended when it returned
    assert len(lines) == 2, lines  # the same error three times is one line
    assert "task=reveal error=RuntimeError: database is locked" in lines[0]
    assert "ValueError: another fault" in lines[1]


def test_a_failing_task_does_not_end_the_game(sqlite_url, apis, monkeypatch, caplog):
    engine = database.make_engine(sqlite_url)
    game_file = long_game(duration=6.0)
    database.prepare_game(engine, game_file)
    teams.add_team(engine, "one", apis.start(json_answer({"pred": 1})).url)
    control.apply(engine, "start", "tester")
    real, faults = reveal.reveal_labels, []

    def faulty(conn, now):  # the reveal task fails its first two times
        if len(faults) < 2:
            faults.append(now)
            raise RuntimeError("injected fault")
        return real(conn, now)

    monkeypatch.setattr(reveal, "reveal_labels", faulty)
    the_game = game.Game(engine, game_file)
    with caplog.at_level(logging.ERROR):
        asyncio.run(play(the_game, engine))  # asserts the loop never ended by itself
    failed = [r for r in caplog.records if "task=reveal" in r.getMessage()]
    with engine.connect() as conn:
        states = conn.execute(sa.select(schema.requests.c.status)).scalars().all()
        public = conn.execute(sa.select(sa.func.sum(schema.phase_totals.c.public_requests)))
        revealed = public.scalar_one()
    assert len(faults) == 2 and len(failed) == 1  # two failures, one line
    assert the_game.stopped_by == "stop"
    assert states and set(states) == {"scored"}  # every round of both phases was played
    assert revealed > 0  # the reveal task ran again after its failures


@pytest.mark.slow  # a 12 s lock in a running game: make test runs it, test-fast does not
def test_a_locked_sqlite_file_pauses_the_game_and_it_goes_on(sqlite_url, apis):
    engine = database.make_engine(sqlite_url)
    game_file = long_game(duration=24.0)
    database.prepare_game(engine, game_file)
    for name in ("one", "two"):
        teams.add_team(engine, name, apis.start(json_answer({"pred": 1})).url)
    control.apply(engine, "start", "tester")
    the_game = game.Game(engine, game_file)
    marks: dict[str, object] = {}

    def hold_the_lock() -> None:  # another process holds a write transaction for 12 s
        conn = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), timeout=30)
        conn.execute("BEGIN IMMEDIATE")
        marks["locked"] = time.time()
        marks["before"] = results_per_round(engine)
        time.sleep(12)
        conn.rollback()
        conn.close()
        marks["released"] = time.time()

    locker = threading.Thread(target=hold_the_lock)

    async def during(elapsed: float) -> None:
        if elapsed > 3 and not locker.is_alive() and "locked" not in marks:
            locker.start()

    asyncio.run(play(the_game, engine, during=during, limit=60))
    locker.join()
    after = results_per_round(engine)
    assert all(n == 1 for *_, n in after)  # nothing duplicated
    assert set(marks["before"]) <= set(after)  # every result written before is still there
    assert the_game.skips.counts[DATABASE_DOWN] > 0  # rounds not sent while it was locked
    assert statuses(engine) <= {"scored", "void"}  # none left half-done
    assert stored_after(engine, marks["released"] + 1) > 0  # and it went on by itself
    with engine.connect() as conn:
        counted = skips.summary(conn, time.time())["skipped"]
    assert counted.get(DATABASE_DOWN) == the_game.skips.counts[DATABASE_DOWN]


@pytest.fixture
def scratch_pg():
    """A scratch database owned by a scratch role, both dropped after the test."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"gs_outage_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE ROLE "{name}" LOGIN'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}" OWNER "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"no scratch database: {exc}")
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name, username=name)
    yield admin, name, url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'DROP ROLE IF EXISTS "{name}"'))
    admin.dispose()


async def play_through(g: game.Game, engine: sa.Engine, limit: float, during) -> None:
    """Like `play`, with reads that wait out the outage (the test's own, not the game's)."""
    task = asyncio.create_task(g.run())
    start = time.monotonic()
    try:
        while time.monotonic() - start < limit:
            await asyncio.sleep(0.2)
            await during(time.monotonic() - start)
            assert not task.done(), task.exception()  # the same process plays on
            try:
                with engine.connect() as conn:
                    if games.game_row(conn).state == "finished":
                        break
            except sa.exc.OperationalError:
                continue
    finally:
        g.stop()
        await task


def refuse_connections(admin: sa.Engine, name: str, seconds: float) -> None:
    """The database refuses connections and its open ones are terminated, for `seconds`."""
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        try:
            end = time.monotonic() + seconds
            while time.monotonic() < end:  # a connection opened before the ALTER is cut too
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
                time.sleep(0.5)
        finally:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))


@pytest.mark.postgres
@pytest.mark.slow  # an 11 s outage in a running game
def test_a_postgresql_outage_mid_game_is_a_pause_and_nothing_is_lost(scratch_pg, apis):
    admin, name, url = scratch_pg
    engine = database.make_engine(url)
    game_file = long_game(duration=26.0)
    database.prepare_game(engine, game_file)
    for team in ("one", "two"):
        teams.add_team(engine, team, apis.start(json_answer({"pred": 1})).url)
    control.apply(engine, "start", "tester")
    the_game = game.Game(engine, game_file)
    marks: dict[str, object] = {}

    def outage() -> None:
        marks["before"] = results_per_round(engine)
        marks["down"] = time.time()
        refuse_connections(admin, name, 11.0)
        marks["up"] = time.time()

    cut = threading.Thread(target=outage)

    async def during(elapsed: float) -> None:
        if elapsed > 3 and "down" not in marks and not cut.is_alive():
            cut.start()

    try:
        asyncio.run(play_through(the_game, engine, 70, during))
    finally:
        cut.join()
    after = results_per_round(engine)
    assert all(n == 1 for *_, n in after)  # nothing duplicated
    assert set(marks["before"]) <= set(after)  # nothing written is lost
    assert the_game.skips.counts[DATABASE_DOWN] > 0
    assert stored_after(engine, marks["up"] + 1) > 0  # scoring went on by itself
    assert the_game.stopped_by == "stop"  # by the test, not by the outage
    assert statuses(engine) <= {"scored", "void"}  # none left half-done
    per_team: dict[int, int] = {}
    for _seq, team, _n in after:
        per_team[team] = per_team.get(team, 0) + 1
    assert len(set(per_team.values())) == 1  # every team alike
    engine.dispose()


def test_overload_skips_whole_rounds_never_part_of_one(sqlite_url, apis):
    engine = database.make_engine(sqlite_url)
    game_file = long_game(duration=4.0, rate=20.0, burst=4, timeout=0.3)
    database.prepare_game(engine, game_file)
    n_teams = 3
    for i in range(n_teams):  # slow answers: the median takes over half the time limit
        teams.add_team(engine, f"t{i}", apis.start(delayed(0.2, json_answer({"pred": 1}))).url)
    control.apply(engine, "start", "tester")
    the_game = game.Game(engine, game_file)
    the_game.admission = Admission(game_file.settings.timeout, limit=12, floor=3)
    asyncio.run(play(the_game, engine, limit=30))
    per_seq: dict[int, int] = {}
    for seq, _team, n in results_per_round(engine):
        per_seq[seq] = per_seq.get(seq, 0) + n
    with engine.connect() as conn:
        sent = conn.execute(sa.select(schema.requests.c.seq, schema.requests.c.status)).all()
        shown = skips.summary(conn, time.time())
    skipped = the_game.skips.counts[OVERLOAD]
    assert skipped > 0  # it shed
    assert all(per_seq.get(seq) == n_teams for seq, status in sent if status == "scored")
    assert {status for _, status in sent} == {"scored"}  # a round is sent whole or not at all
    planned = sum(round(p.rate * p.duration) for p in game_file.phases)
    assert len(sent) + the_game.skips.total == planned  # every round due: sent or skipped
    assert shown["skipped"][OVERLOAD] == skipped
    client = create_app({"DATABASE_URL": sqlite_url, "TESTING": True}).test_client()
    reference = client.get("/api/leaderboard").json["reference"]
    assert reference["skipped"][OVERLOAD] == skipped  # the board's reference counts them
    assert reference["overloaded"] and "another shard" in reference["advice"]  # what to do


def test_admission_cuts_the_limit_when_late_and_grows_it_when_in_time():
    from game_server.common.records import Result, Score

    def results(ms: float) -> list[Result]:
        return [Result(i, Score("correct", None, 1, 1), ms) for i in range(10)]

    a = Admission(timeout=1.0, limit=100, floor=10)
    assert a.admit(60) and not a.admit(60)  # whole rounds: the second does not fit
    a.done(60, results(900))  # late: cut
    assert a.limit < 100 and a.asking == 0
    cut = a.limit
    assert a.admit(5) and a.admit(5)
    a.done(5, results(10))
    assert a.limit > cut  # in time: it grows back
    b = Admission(timeout=1.0, limit=10, floor=10)
    assert b.admit(500)  # nothing in flight: a round always goes (the game never stops)


def run_process(db: str, *args: str) -> subprocess.Popen:
    """`game-server run` as a process of its own."""
    env = {**os.environ, "GAME_DATABASE_URL": db}
    command = [sys.executable, "-m", "game_server", "run", "--no-web", *args]
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)


def wait_for_lease(engine: sa.Engine, process: subprocess.Popen) -> None:
    """Until the loop holds its lease (it is running)."""
    for _ in range(300):
        assert process.poll() is None, process.stderr.read()
        with engine.connect() as conn:
            owner = conn.execute(sa.select(schema.loop_leases.c.owner)).scalar()
        if owner:
            return
        time.sleep(0.1)
    raise AssertionError("the loop did not start")


@pytest.mark.parametrize("how", ["sigterm", "lease lost"])
def test_run_exits_zero_on_a_signal_and_non_zero_on_an_unexpected_stop(sqlite_url, how):
    engine = database.make_engine(sqlite_url)
    database.init_db(engine)
    process = run_process(sqlite_url, "--game", "workshop")
    try:
        wait_for_lease(engine, process)
        if how == "sigterm":
            process.send_signal(signal.SIGTERM)
        else:  # another loop took the lease: this one stops by itself
            with engine.begin() as conn:
                conn.execute(schema.loop_leases.update().values(owner="elsewhere:1:x"))
        status = process.wait(30)
        err = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    if how == "sigterm":
        assert status == 0, err
    else:
        assert status != 0 and "lost its lease" in err, err


@pytest.mark.postgres
def test_the_board_answers_its_last_data_with_a_banner_while_the_database_is_down(scratch_pg):
    admin, name, url = scratch_pg
    engine = database.make_engine(url)
    database.prepare_game(engine, fast_game())
    teams.add_team(engine, "one", "http://127.0.0.1:9/predict")
    engine.dispose()
    client = create_app({"DATABASE_URL": url, "LIVE_CACHE_SECONDS": 0.05}).test_client()
    before = client.get("/api/leaderboard")
    assert before.status_code == 200 and "database_down_since" not in before.json
    down_at = time.time()
    cut = threading.Thread(target=refuse_connections, args=(admin, name, 3.0))
    cut.start()
    try:
        time.sleep(1.0)  # the refresher fails and stops; a request computes it again
        during = client.get("/api/leaderboard")
    finally:
        cut.join()
    assert during.status_code == 200  # the last data, not an error page
    assert during.json["teams"] == before.json["teams"]
    assert during.json["database_down_since"] >= down_at
    for _ in range(50):  # back by itself
        time.sleep(0.1)
        after = client.get("/api/leaderboard")
        if "database_down_since" not in after.json:
            break
    assert after.status_code == 200 and "database_down_since" not in after.json
