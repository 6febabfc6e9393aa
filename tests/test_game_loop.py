"""The game loop end to end: real team APIs on 127.0.0.1, the real customer and database."""

import asyncio
import socket
import time

import pytest
import sqlalchemy as sa
from engine_helpers import fast_game, peeking, play
from team_apis import TeamAPIs, hang, json_answer

from game_server.play import loop as game
from game_server.play import teams
from game_server.storage import control, database, games, schema, shards
from game_server.web.app import create_app


@pytest.fixture
def apis():
    """A place to start team APIs; closed after the test."""
    servers = TeamAPIs()
    yield servers
    servers.close()


def test_a_whole_game_is_scored_stored_and_shown(db_url, apis):
    engine = database.make_engine(db_url)
    game_file = fast_game()
    database.prepare_game(engine, game_file)
    tokens = {
        "good": teams.add_team(engine, "good", apis.start(peeking(engine)).url),
        "wrong": teams.add_team(engine, "wrong", apis.start(peeking(engine, flip=True)).url),
        "hangs": teams.add_team(engine, "hangs", apis.start(hang()).url),
        "broken": teams.add_team(engine, "broken", apis.start(json_answer({"e": 1}, 500)).url),
    }
    control.apply(engine, "start", "tester")
    the_game = game.Game(engine, game_file)
    asyncio.run(play(the_game, engine))

    with engine.connect() as conn:
        assert games.game_row(conn).state == "finished"  # both phases ran out by the clock
        statuses = conn.execute(sa.select(schema.requests.c.status)).scalars().all()
        by_phase = conn.execute(sa.select(schema.phase_totals)).mappings().all()
        sums = dict(
            conn.execute(
                sa.select(schema.teams.c.name, sa.func.sum(schema.results.c.points))
                .join(schema.teams)
                .group_by(schema.teams.c.name)
            ).all()
        )
        clock_log = (
            conn.execute(
                sa.select(schema.control_log.c.actor).where(
                    schema.control_log.c.action == "phase-over"
                )
            )
            .scalars()
            .all()
        )
    n = len(statuses)
    # the schedule follows the phase clock: 20 rounds/s for 1.5 s in each phase, exactly
    # (a loop stalled over a second skips rounds, and counts them)
    assert n + the_game.skips.total == 60 and n >= 40
    assert set(statuses) == {"scored"}
    assert [p["phase_index"] for p in by_phase] == [0, 1] and all(
        p["requests"] > 10 for p in by_phase
    )
    assert clock_log == ["clock", "clock"]

    client = create_app({"DATABASE_URL": db_url}).test_client()
    board = {t["name"]: t for t in client.get("/api/leaderboard").get_json()["teams"]}
    assert (board["good"]["points"], board["good"]["correct"], board["good"]["rank"]) == (n, n, 1)
    assert (board["wrong"]["points"], board["wrong"]["wrong"]) == (0, n)
    # the hanging API costs itself -1 per round, and never delays the others past the timeout
    assert board["hangs"]["failures"] == {"timeout": n} and board["hangs"]["up"] is False
    assert board["broken"]["failures"] == {"http_status": n}
    assert board["good"]["up"] is True and board["good"]["accuracy"] == 1.0
    assert board["good"]["latency_p95"] < 300
    assert {name: t["points"] for name, t in board.items()} == sums

    # body excerpts are private: only with the team's own token
    auth = {"Authorization": f"Bearer {tokens['broken']}"}
    results = client.get("/api/teams/broken/results?limit=3", headers=auth).get_json()["results"]
    assert [r["status_code"] for r in results] == [500] * 3 and '"e": 1' in results[0][
        "body_excerpt"
    ]

    time.sleep(0.6)  # label_delay is 0.5 s: every label is visible now
    seen, cursor = [], 0
    while True:
        page = client.get(
            f"/api/feedback?after={cursor}&limit=7",
            headers={"Authorization": f"Bearer {tokens['wrong']}"},
        ).get_json()
        seen += page["items"]
        if page["cursor"] == cursor:
            break
        cursor = page["cursor"]
    assert len(seen) == n and all(i["pred"] == 1 - i["label"] for i in seen)


def test_pause_stops_the_requests_and_resume_goes_on(sqlite_url, apis):
    engine = database.make_engine(sqlite_url)
    game_file = fast_game()
    database.prepare_game(engine, game_file)
    teams.add_team(engine, "good", apis.start(peeking(engine)).url)
    control.apply(engine, "start", "tester")
    marks = {}

    async def during(t):
        if t > 0.6 and "pause" not in marks:
            control.apply(engine, "pause", "another process")
            marks["pause"] = time.time()
        if t > 1.8 and "resume" not in marks:
            marks["resume"] = time.time()
            control.apply(engine, "resume", "another process")

    asyncio.run(play(game.Game(engine, game_file), engine, during=during))
    with engine.connect() as conn:
        sent = conn.execute(sa.select(schema.requests.c.sent_at)).scalars().all()
        g = games.game_row(conn)
    # the loop follows within a poll (0.3 s); nothing is sent in the rest of the pause
    quiet = [t for t in sent if marks["pause"] + game.POLL_SECONDS + 0.1 < t < marks["resume"]]
    assert quiet == []
    assert any(t > marks["resume"] for t in sent)
    assert g.state == "finished"
    # the paused time did not count: the game took about 3 s of running plus the pause
    assert g.finished_at - g.started_at > 3.0 + (marks["resume"] - marks["pause"]) - 0.5


def test_a_second_loop_on_the_same_game_is_refused(sqlite_url):
    engine = database.make_engine(sqlite_url)
    database.prepare_game(engine, fast_game())
    shards.acquire_lease(engine, "elsewhere:1:a")  # another machine's live loop
    with pytest.raises(games.GameBusy, match="another game loop is running this game"):
        asyncio.run(game.Game(engine, fast_game()).run())
    # a loop on this machine whose process is gone is taken over at once
    with engine.begin() as conn:
        dead = f"{socket.gethostname()}:999999999:x"
        conn.execute(schema.loop_leases.update().values(owner=dead))
    shards.acquire_lease(engine, "me")
    with engine.connect() as conn:
        assert games.game_row(conn).loop_owner == "me"


def test_rounds_due_follow_the_phase_clock_in_whole_bursts():
    phase = fast_game().phases[0]  # 20 rounds/s in bursts of 2, for 1.5 s
    assert (phase.rate, phase.burst, phase.duration) == (20.0, 2, 1.5)
    assert game.rounds_due(phase, 0.0) == 2  # the first burst at once
    assert game.rounds_due(phase, 0.0999) == 2
    assert game.rounds_due(phase, 0.1) == 4
    assert game.rounds_due(phase, 1.0) == 22
    assert game.rounds_due(phase, 1.49) == 30  # never more than rate x duration
    assert game.rounds_due(phase, 99.0) == 30
