"""Nothing public tells a label before its time (GAME.md §6; issue 15, item 3).

A team that always answers 0 reads a request's label off any public number that moves
when the round is scored: its correct count goes up for a label 0, its wrong count for a
1. Here that team plays the real game loop (real team APIs on 127.0.0.1, the real
customer and database) while every public view is polled: the leaderboard, the chart's
history, the team summary and its results (public and with the team's own token), and
the export of the unfinished game. Each poll may count only rounds whose label was
visible when it was made; failures may show at once; and once the labels are visible
the public totals are the true ones.
"""

import asyncio
import json
import time

import pytest
import sqlalchemy as sa
from engine_helpers import fast_game, play
from team_apis import TeamAPIs, json_answer

from game_server.play import loop as game
from game_server.play import teams
from game_server.storage import control, database, export, games, schema, standings
from game_server.web.app import create_app

LABEL_DELAY = 1.5  # the game runs 3 s: labels come out during the game and after it
ROUNDING = 0.006  # the API rounds reference points to 0.01


@pytest.fixture
def apis():
    """A place to start team APIs; closed after the test."""
    servers = TeamAPIs()
    yield servers
    servers.close()


def truth(engine: sa.Engine, team_id: int, until: float) -> dict:
    """What anyone may know at `until`: the team's valid answers to requests whose label
    is visible by then, by label, and those requests' reference points."""
    req, res = schema.requests, schema.results
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                req.c.seq,
                req.c.label,
                req.c.label_visible_at,
                req.c.status,
                req.c.oracle_points,
                req.c.baseline_points,
                res.c.outcome,
            ).select_from(
                req.outerjoin(res, sa.and_(res.c.seq == req.c.seq, res.c.team_id == team_id))
            )
        ).all()
    visible = [r for r in rows if r.label_visible_at <= until]
    answered = [r for r in visible if r.outcome in ("correct", "wrong")]
    scored = [r for r in visible if r.status == "scored"]
    return {
        "zeros": sum(r.label == 0 for r in answered),  # what an always-0 team gets right
        "ones": sum(r.label == 1 for r in answered),
        "scored": len(scored),
        "oracle": sum(r.oracle_points for r in scored),
        "baseline": sum(r.baseline_points for r in scored),
        "visible": {r.seq for r in visible},
        "sent": len(rows),
    }


def read_export(folder) -> dict:
    """The exported JSON tables, by name."""
    names = ("requests", "results", "team_totals", "phase_totals")
    return {n: json.loads((folder / f"{n}.json").read_text()) for n in names}


def poll(client, engine, token: str, folder) -> dict:
    """Every public view once, and the team's own results with its token."""
    got = {
        "board": client.get("/api/leaderboard").get_json(),
        "history": client.get("/api/history").get_json(),
        "summary": client.get("/api/teams/zero").get_json(),
        "public": client.get("/api/teams/zero/results?limit=500").get_json()["results"],
        "private": client.get(
            "/api/teams/zero/results?limit=500", headers={"Authorization": f"Bearer {token}"}
        ).get_json()["results"],
    }
    export.export(engine, folder)
    got["export"] = read_export(folder)
    return got


def board_row(board: dict, name: str) -> dict:
    """One team's row of a leaderboard."""
    return next(t for t in board["teams"] if t["name"] == name)


def check_counts(where: str, row: dict, known: dict) -> None:
    """Correct / wrong of the always-0 team: never more than the visible labels allow."""
    assert row["correct"] <= known["zeros"], (where, row, known)
    assert row["wrong"] <= known["ones"], (where, row, known)


def check_reference(where: str, oracle: float, baseline: float, known: dict) -> None:
    """The reference lines: never more than the visible requests' points."""
    assert oracle <= known["oracle"] + ROUNDING, (where, oracle, known)
    assert baseline <= known["baseline"] + ROUNDING, (where, baseline, known)


def check_rows(where: str, rows: list[dict], known: dict) -> None:
    """Result rows: no outcome or points of a valid answer before its label is visible."""
    for r in rows:
        if r["seq"] not in known["visible"]:
            assert r["outcome"] in ("answered", "failed") and r["points"] in (None, -1), (where, r)


def check_export(data: dict, known: dict, zero_id: int) -> None:
    """The export of the unfinished game: public totals, hidden labels, hidden outcomes."""
    mine = [t for t in data["team_totals"] if t["team"] == "zero"]
    check_counts("export", {k: sum(t[k] for t in mine) for k in ("correct", "wrong")}, known)
    ref = data["phase_totals"]
    check_reference(
        "export",
        sum(p["oracle_points"] for p in ref),
        sum(p["baseline_points"] for p in ref),
        known,
    )
    for r in data["requests"]:
        if r["seq"] not in known["visible"]:
            hidden = (r["label"], r["p_default"], r["oracle_points"], r["baseline_points"])
            assert hidden == (None,) * 4, r
    rows = [r for r in data["results"] if r["team_id"] == zero_id]
    check_rows("export results", rows, known)
    assert all(r["pred"] is None for r in rows if r["outcome"] == "answered")


def check_poll(got: dict, zero_id: int) -> None:
    """One poll tells nothing of a label that was not visible when it was made."""
    known = got["truth"]
    board = got["board"]
    zero = board_row(board, "zero")
    check_counts("leaderboard", zero, known)
    assert zero["points"] == zero["correct"]  # the always-0 team never fails
    if zero["correct"] + zero["wrong"]:  # accuracy from the counted rounds only
        assert zero["accuracy"] == round(zero["correct"] / (zero["correct"] + zero["wrong"]), 3)
    else:
        assert zero["accuracy"] is None
    ref = board["reference"]
    assert ref["revealed"] <= known["scored"]
    check_reference("leaderboard", ref["oracle_points"], ref["baseline_points"], known)
    history = got["history"]
    assert max((p[1] for p in history["teams"].get("zero", [])), default=0) <= known["zeros"]
    check_reference(
        "history",
        max((p[1] for p in history["oracle"]), default=0),
        max((p[1] for p in history["baseline"]), default=0),
        known,
    )
    summary = got["summary"]
    check_counts("team summary", summary["standing"], known)
    series = [p for p in summary["series"] if p["accuracy"] is not None]
    assert sum(round(p["accuracy"] * p["revealed"]) for p in series) <= known["zeros"]
    check_rows("team results", got["public"], known)
    check_rows("team results with the token", got["private"], known)
    check_export(got["export"], known, zero_id)


def test_an_always_zero_team_learns_no_label_before_its_time(db_url, apis, tmp_path):
    engine = database.make_engine(db_url)
    game_file = fast_game(label_delay=LABEL_DELAY)
    database.prepare_game(engine, game_file)
    token = teams.add_team(engine, "zero", apis.start(json_answer({"pred": 0})).url)
    teams.add_team(engine, "broken", apis.start(json_answer({"e": 1}, 500)).url)
    with engine.connect() as conn:
        ids = dict(conn.execute(sa.select(schema.teams.c.name, schema.teams.c.id)).all())
    control.apply(engine, "start", "tester")
    app = create_app({"DATABASE_URL": db_url, "TESTING": True, "LIVE_CACHE_SECONDS": 0})
    client = app.test_client()
    polls: list[dict] = []

    def one_poll() -> None:
        got = poll(client, engine, token, tmp_path / "export")
        got["truth"] = known = truth(engine, ids["zero"], time.time())  # after the poll
        with engine.connect() as conn:
            if games.game_row(conn).state == "finished":
                return  # the final standings show everything (no round is sent any more)
        check_poll(got, ids["zero"])
        zero, broken = board_row(got["board"], "zero"), board_row(got["board"], "broken")
        polls.append(
            {
                "counted": zero["correct"] + zero["wrong"],
                "sent": known["sent"],
                "broken_failed": broken["failed"],
                "visible": len(known["visible"]),
            }
        )

    async def during(_t: float) -> None:
        await asyncio.to_thread(one_poll)

    # the game runs 3 s; the loop goes on after the end, while the last labels come out
    limit = 3.0 + LABEL_DELAY + 2.5
    asyncio.run(
        play(game.Game(engine, game_file), engine, until="never", limit=limit, during=during)
    )

    assert len(polls) >= 10  # polls of the running game
    # the public totals moved during the game, behind the rounds sent
    assert any(0 < p["counted"] < p["sent"] for p in polls), polls
    # failures show at once: more than the requests whose labels were visible
    assert any(p["broken_failed"] > p["visible"] for p in polls), polls

    # after the label delay the public totals have caught up with the true ones
    with engine.connect() as conn:
        public = standings.leaderboard_teams(conn)
        final = standings.leaderboard_teams(conn, final=True)
        stored = dict(
            conn.execute(
                sa.select(schema.teams.c.name, sa.func.sum(schema.results.c.points))
                .join(schema.teams)
                .group_by(schema.teams.c.name)
            ).all()
        )
    known = truth(engine, ids["zero"], time.time())
    zero = board_row(public, "zero")
    assert (zero["correct"], zero["wrong"]) == (known["zeros"], known["ones"]) != (0, 0)
    assert public == final  # every label is visible: public and true totals agree
    assert {t["name"]: t["points"] for t in final["teams"]} == stored
    assert public["reference"]["oracle_points"] == pytest.approx(known["oracle"], abs=0.01)
    # the finished game's views show the true totals
    board = client.get("/api/leaderboard").get_json()
    assert board["game"]["state"] == "finished" and board["teams"] == final["teams"]
    export.export(engine, tmp_path / "final")
    data = read_export(tmp_path / "final")
    assert all(r["label"] in (0, 1) for r in data["requests"])
    assert sum(t["correct"] for t in data["team_totals"] if t["team"] == "zero") == known["zeros"]
