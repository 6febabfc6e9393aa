"""The reveal on SQLite and PostgreSQL: public totals count a round only once its label is
visible (failures at once); the freeze, the chart and the export of an unfinished game
follow them, and a finished game shows the true totals."""

import json
import time

import pytest
from engine_helpers import request_row, result
from web_helpers import make_game, team_ids

from game_server.common import records
from game_server.storage import control, export, reveal, standings, writes
from game_server.web.app import create_app

TIMEOUT = ("failed", "timeout")


@pytest.fixture
def game(db_url):
    """A running game with red and blue; (engine, team ids by name)."""
    engine, _ = make_game(db_url)
    yield engine, team_ids(engine)
    engine.dispose()


def scored(seq: int, outcomes: dict[int, tuple]) -> records.ScoredRound:
    """Round `seq` (phase 0) with each team's outcome: "correct", "wrong" or TIMEOUT."""
    results = [
        result(t, o[0], o[1], status=None)
        if isinstance(o, tuple)
        else result(t, o, pred=int(o == "correct"))
        for t, o in outcomes.items()
    ]
    return records.ScoredRound(seq, 0, 0.8, 0.2, results)


def reveal_now(engine, now=None) -> int:
    """One reveal step, as the game loop runs it every second."""
    with engine.begin() as conn:
        return reveal.reveal_labels(conn, now)


def board(engine, final=False) -> dict:
    """The standings by team name, and the reference."""
    with engine.connect() as conn:
        b = standings.leaderboard_teams(conn, final=final)
    return {t["name"]: t for t in b["teams"]} | {"reference": b["reference"]}


def test_the_watermark_stops_at_the_first_hidden_or_unscored_request(game):
    engine, ids = game
    red, blue = ids["red"], ids["blue"]
    now = time.time()
    rows = [request_row(s, sent_at=now - 10, label=1) for s in (1, 2, 3)]
    rows.append(request_row(4, sent_at=now, delay=60.0, label=1))  # its label is hidden
    with engine.begin() as conn:
        writes.insert_requests(conn, rows)
        writes.store_rounds(  # seq 2 is still in flight
            conn, [scored(s, {red: "correct", blue: TIMEOUT}) for s in (1, 3, 4)]
        )
    assert reveal_now(engine) == 1
    b = board(engine)
    assert (b["red"]["points"], b["red"]["correct"], b["red"]["wrong"]) == (1, 1, 0)
    assert (b["blue"]["points"], b["blue"]["failed"]) == (-3, 3)  # failures at once
    assert b["reference"] == {
        "requests": 3,
        "revealed": 1,
        "void": 0,
        "oracle_points": 0.8,
        "baseline_points": 0.2,
        "skipped": {},  # no round skipped: not overloaded, no advice
        "overloaded": False,
        "advice": None,
    }
    with engine.begin() as conn:
        writes.store_rounds(conn, [scored(2, {red: "wrong", blue: TIMEOUT})])
    assert reveal_now(engine) == 2  # seq 2 and 3; seq 4 still hidden
    b = board(engine)
    assert (b["red"]["points"], b["red"]["correct"], b["red"]["wrong"]) == (2, 2, 1)
    assert b["reference"]["revealed"] == 3 and b["reference"]["oracle_points"] == 2.4
    assert reveal_now(engine) == 0
    assert reveal_now(engine, now + 61) == 1
    assert board(engine) == board(engine, final=True)
    assert board(engine)["red"]["points"] == 3


def test_void_and_missing_requests_do_not_stop_the_watermark(game):
    engine, ids = game
    now = time.time()
    with engine.begin() as conn:  # seq 2 was never stored (its round failed before sending)
        writes.insert_requests(conn, [request_row(s, sent_at=now - 10) for s in (1, 3, 4)])
        writes.store_rounds(conn, [scored(s, {ids["red"]: "correct"}) for s in (1, 4)])
        writes.void_requests(conn, [3])
    assert reveal_now(engine) == 4
    b = board(engine)
    assert b["red"]["correct"] == 2 and b["reference"]["revealed"] == 2
    assert b["reference"]["void"] == 1


def test_recent_accuracy_counts_the_last_rounds_with_visible_labels(game, monkeypatch):
    monkeypatch.setattr(reveal, "RECENT_ROUNDS", 3)
    engine, ids = game
    red, blue = ids["red"], ids["blue"]
    now = time.time()
    answers = ["correct", "correct", "wrong", TIMEOUT, "wrong", "wrong"]
    with engine.begin() as conn:
        writes.insert_requests(conn, [request_row(s, sent_at=now - 10) for s in range(1, 7)])
        writes.insert_requests(conn, [request_row(7, sent_at=now, delay=60)])
    trail = []
    for seq, answer in enumerate(answers, 1):
        with engine.begin() as conn:
            writes.store_rounds(conn, [scored(seq, {red: answer, blue: "correct"})])
        reveal_now(engine)
        trail.append(board(engine)["red"]["accuracy"])
    # the window: the last 3 rounds up to the watermark, valid answers only
    assert trail == [1.0, 1.0, 0.667, 0.5, 0.0, 0.0]  # to 0.001
    with engine.begin() as conn:  # seq 7 is scored, but its label is not visible
        writes.store_rounds(conn, [scored(7, {red: "correct", blue: "correct"})])
    reveal_now(engine)
    assert board(engine)["red"]["accuracy"] == 0.0 and board(engine)["blue"]["accuracy"] == 1.0
    assert reveal_now(engine, now + 61) == 1  # a step over several rounds: the same window
    assert board(engine)["red"]["accuracy"] == 0.333  # seq 5, 6 and 7


def test_a_step_over_a_whole_window_counts_it_afresh(game, monkeypatch):
    monkeypatch.setattr(reveal, "RECENT_ROUNDS", 3)
    engine, ids = game
    red, blue = ids["red"], ids["blue"]
    now = time.time()
    answers = ["wrong", "wrong", "correct", TIMEOUT, "correct", "wrong", "correct"]
    with engine.begin() as conn:
        writes.insert_requests(conn, [request_row(s, sent_at=now - 10) for s in range(1, 8)])
        writes.store_rounds(
            conn, [scored(s, {red: a, blue: "wrong"}) for s, a in enumerate(answers[:5], 1)]
        )
    assert reveal_now(engine) == 5  # rounds 3, 4 and 5 make the window
    b = board(engine)
    assert b["red"]["accuracy"] == 1.0 and b["blue"]["accuracy"] == 0.0
    assert (b["red"]["correct"], b["red"]["wrong"], b["red"]["points"]) == (2, 2, 1)
    with engine.begin() as conn:  # blue is not asked rounds 6 and 7
        writes.store_rounds(conn, [scored(s, {red: answers[s - 1]}) for s in (6, 7)])
    assert reveal_now(engine) == 2  # a short step: rounds 5, 6 and 7
    b = board(engine)
    assert b["red"]["accuracy"] == 0.667 and b["blue"]["accuracy"] == 0.0
    assert board(engine) == board(engine, final=True)


def test_the_freeze_keeps_public_standings_and_the_end_shows_the_truth(game):
    engine, ids = game
    now = time.time()
    with engine.begin() as conn:
        writes.insert_requests(
            conn, [request_row(1, sent_at=now - 10), request_row(2, sent_at=now, delay=60)]
        )
        writes.store_rounds(conn, [scored(s, {ids["red"]: "correct"}) for s in (1, 2)])
    reveal_now(engine)
    control.apply(engine, "freeze", "tester")
    with engine.connect() as conn:
        frozen = standings.leaderboard(conn)
    red = next(t for t in frozen["teams"] if t["name"] == "red")
    assert frozen["frozen"] and (red["points"], red["correct"]) == (1, 1)
    assert frozen["reference"]["oracle_points"] == 0.8
    control.apply(engine, "finish", "tester")
    with engine.connect() as conn:
        final = standings.leaderboard(conn)
    red = next(t for t in final["teams"] if t["name"] == "red")
    assert not final["frozen"] and (red["points"], red["correct"]) == (2, 2)
    assert final["reference"] == {
        "requests": 2,
        "revealed": 2,
        "void": 0,
        "oracle_points": 1.6,
        "baseline_points": 0.4,
        "skipped": {},  # no round skipped: not overloaded, no advice
        "overloaded": False,
        "advice": None,
    }


def test_the_chart_samples_the_public_points(game):
    engine, ids = game
    now = time.time()
    with engine.begin() as conn:
        writes.insert_requests(
            conn, [request_row(1, sent_at=now - 10), request_row(2, sent_at=now, delay=60)]
        )
        writes.store_rounds(
            conn, [scored(s, {ids["red"]: "correct", ids["blue"]: TIMEOUT}) for s in (1, 2)]
        )
        reveal.reveal_labels(conn)
        writes.sample_history(conn, now)
        hist = standings.history(conn)
    assert hist["teams"] == {"red": [[now, 1]], "blue": [[now, -2]]}
    assert hist["oracle"] == [[now, 0.8]] and hist["baseline"] == [[now, 0.2]]


def read(folder, name: str) -> list[dict]:
    """One exported table (JSON)."""
    return json.loads((folder / f"{name}.json").read_text())


def test_the_export_of_an_unfinished_game_tells_no_label_early(game, tmp_path):
    engine, ids = game
    now = time.time()
    with engine.begin() as conn:
        writes.insert_requests(
            conn, [request_row(1, sent_at=now - 10), request_row(2, sent_at=now, delay=60)]
        )
        writes.store_rounds(
            conn, [scored(s, {ids["red"]: "correct", ids["blue"]: TIMEOUT}) for s in (1, 2)]
        )
    reveal_now(engine)
    export.export(engine, tmp_path / "live")
    requests = {r["seq"]: r for r in read(tmp_path / "live", "requests")}
    assert requests[1]["label"] == 1 and requests[1]["p_default"] == 0.8
    hidden = [requests[2][k] for k in ("label", "p_default", "oracle_points", "baseline_points")]
    assert hidden == [None] * 4 and requests[2]["features"] == request_row(2)["features"]
    results = {(r["seq"], r["team"]): r for r in read(tmp_path / "live", "results")}
    assert (results[1, "red"]["outcome"], results[1, "red"]["pred"]) == ("correct", 1)
    assert [results[2, "red"][k] for k in ("outcome", "pred", "points")] == ["answered", None, None]
    assert (results[2, "blue"]["outcome"], results[2, "blue"]["points"]) == ("failed", -1)
    totals = {t["team"]: t for t in read(tmp_path / "live", "team_totals")}
    assert (totals["red"]["points"], totals["red"]["correct"]) == (1, 1)
    assert (totals["blue"]["points"], totals["blue"]["failed"]) == (-2, 2)
    assert not any(k.startswith("public_") for k in totals["red"])
    phases = read(tmp_path / "live", "phase_totals")
    assert [(p["requests"], p["oracle_points"]) for p in phases] == [(1, 0.8)]

    control.apply(engine, "finish", "tester")
    export.export(engine, tmp_path / "final")
    requests = {r["seq"]: r for r in read(tmp_path / "final", "requests")}
    assert requests[2]["label"] == 1
    totals = {t["team"]: t for t in read(tmp_path / "final", "team_totals")}
    assert (totals["red"]["points"], totals["red"]["correct"]) == (2, 2)
    phases = read(tmp_path / "final", "phase_totals")
    assert [(p["requests"], p["oracle_points"]) for p in phases] == [(2, 1.6)]


def test_one_poll_of_the_board_is_one_moment_even_when_a_reveal_lands_inside_it(
    game, db_url, monkeypatch
):
    """Issue 21 item 9: a reveal committed between the board's queries (here, forced
    between the totals and the recent accuracy) must not show an accuracy whose labels
    the counts do not include."""
    engine, ids = game
    red, blue = ids["red"], ids["blue"]
    now = time.time()
    with engine.begin() as conn:
        writes.insert_requests(conn, [request_row(s, sent_at=now, delay=5.0) for s in (1, 2)])
        writes.store_rounds(conn, [scored(s, {red: "correct", blue: "wrong"}) for s in (1, 2)])
    assert reveal_now(engine) == 0  # scored, labels still hidden
    counted = standings._failures_by_team  # runs after the totals, before the accuracy

    def reveal_in_between(conn):
        assert reveal_now(engine, now + 6) == 2  # another connection, committed
        monkeypatch.setattr(standings, "_failures_by_team", counted)
        return counted(conn)

    monkeypatch.setattr(standings, "_failures_by_team", reveal_in_between)
    app = create_app({"DATABASE_URL": db_url, "TESTING": True, "LIVE_CACHE_SECONDS": 0})
    polled = app.test_client().get("/api/leaderboard").get_json()
    rows = {t["name"]: t for t in polled["teams"]}
    assert (rows["red"]["correct"], rows["red"]["accuracy"]) == (0, None), rows["red"]
    assert (rows["blue"]["wrong"], rows["blue"]["accuracy"]) == (0, None), rows["blue"]
    assert polled["reference"]["revealed"] == 0
    again = app.test_client().get("/api/leaderboard").get_json()  # the next poll
    rows = {t["name"]: t for t in again["teams"]}
    assert (rows["red"]["correct"], rows["red"]["accuracy"]) == (2, 1.0)
