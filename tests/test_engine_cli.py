"""The engine's commands: init, teams, control, export, run (and a kill -9 of run)."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from engine_helpers import FAST_GAME, next_seq, peeking
from team_apis import TeamAPIs, delayed, json_answer

from game_server.cli.main import main
from game_server.storage import database, games, schema, shards
from game_server.storage.clock import PhaseClock


def cli(db_url, *args, ok=True):
    """Run `game-server --db URL ARGS...`; the result (exit 0 checked when `ok`)."""
    result = CliRunner().invoke(main, ["--db", db_url, *args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_init_teams_control_and_export(db_url, tmp_path):
    assert "created" in cli(db_url, "init", "--game", str(FAST_GAME)).output
    assert "exists" in cli(db_url, "init", "--game", str(FAST_GAME)).output
    added = cli(db_url, "teams", "add", "red", "--url", "http://127.0.0.1:9001/predict").output
    token = added.strip().rsplit(" ", 1)[-1]
    assert len(token) >= 43
    cli(db_url, "teams", "add", "blue", "--url", "http://127.0.0.1:9002", "--protocol", "mlflow")
    refused = cli(db_url, "teams", "add", "far", "--url", "http://10.9.9.9/predict", ok=False)
    assert refused.exit_code == 1 and "allow-list" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    dup = cli(db_url, "teams", "add", "red", "--url", "http://127.0.0.1:9003/predict", ok=False)
    assert "exists already" in dup.output
    cli(db_url, "teams", "disable", "blue")
    listed = json.loads(cli(db_url, "teams", "list", "--json").output)
    assert [(t["name"], t["active"]) for t in listed] == [("blue", False), ("red", True)]
    assert token not in cli(db_url, "teams", "list").output

    assert "running" in cli(db_url, "control", "start").output
    bad = cli(db_url, "control", "resume", ok=False)
    assert bad.exit_code == 1 and "cannot resume: the game is running" in bad.output
    cli(db_url, "control", "freeze")
    cli(db_url, "control", "finish")

    out = tmp_path / "export"
    cli(db_url, "export", "--out", str(out))
    frame = pd.read_csv(out / "teams.csv")
    assert list(frame["name"]) == ["red", "blue"] and "token_hash" not in frame.columns
    assert json.loads((out / "teams.json").read_text())[0]["name"] == "red"
    log = json.loads((out / "control_log.json").read_text())
    assert [(r["action"], r["ok"]) for r in log] == [
        ("start", True),
        ("resume", False),
        ("freeze", True),
        ("finish", True),
    ]
    for name in ("requests", "results", "team_totals", "team_failures", "phase_totals", "phases"):
        assert (out / f"{name}.csv").exists() and isinstance(
            json.loads((out / f"{name}.json").read_text()), list
        )
    assert len(pd.read_csv(out / "phases.csv")) == 2


def test_commands_before_init_say_what_to_do(tmp_path):
    url = f"sqlite:///{tmp_path / 'none.sqlite'}"
    for args in (["teams", "list"], ["control", "start"], ["export", "--out", str(tmp_path)]):
        result = cli(url, *args, ok=False)
        assert result.exit_code == 1 and "game-server init" in result.output


def test_no_silent_second_game(tmp_path, monkeypatch):
    """Without a database chosen: on a server every command says to load its settings, and
    no command but init creates a database in the current folder."""
    monkeypatch.delenv("GAME_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    server_env = tmp_path / "env"
    server_env.write_text("GAME_DATABASE_URL=postgresql+psycopg://game@127.0.0.1/game\n")
    monkeypatch.setattr(database, "SYSTEM_ENV", server_env)
    for args in (["teams", "list"], ["control", "start"], ["init"], ["export"], ["allow"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, (args, result.output)
        assert f"set -a; . {server_env}; set +a" in result.output, result.output
    monkeypatch.setattr(database, "SYSTEM_ENV", tmp_path / "absent")
    for args in (["teams", "list"], ["control", "start"], ["teams", "add", "a", "--url", "x"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "no game database in this folder" in result.output
    assert not (tmp_path / "instance").exists()
    assert CliRunner().invoke(main, ["init"]).exit_code == 0  # asked: init creates it here
    assert (tmp_path / "instance" / "game.sqlite").is_file()
    listed = CliRunner().invoke(main, ["teams", "list"])
    assert listed.exit_code == 0 and "no teams yet" in listed.output


def test_export_defaults_to_a_private_state_folder(db_url, tmp_path, monkeypatch):
    """`export` without --out writes into GAME_STATE_DIR/exports/<time>, folders 0700."""
    state = tmp_path / "state"
    monkeypatch.setenv("GAME_STATE_DIR", str(state))
    monkeypatch.chdir(tmp_path)
    cli(db_url, "init", "--game", str(FAST_GAME))
    cli(db_url, "teams", "add", "red", "--url", "http://127.0.0.1:9001/predict")
    output = cli(db_url, "export").output
    (folder,) = (state / "exports").iterdir()
    assert str(folder) in output and (folder / "teams.csv").is_file()
    for path in (state, state / "exports", folder):
        assert path.stat().st_mode & 0o777 == 0o700, path
    assert not (tmp_path / "exports").exists()


def test_new_game_exports_the_old_one_keeps_the_teams_and_refuses_while_running(
    db_url, tmp_path, monkeypatch
):
    """`new`: refused while the game runs or a loop serves it; then the old game exported,
    its rows gone, a new game in the lobby, the teams kept with their tokens."""
    import socket

    from web_helpers import make_game, store_results

    from game_server.storage import teams as registry

    monkeypatch.setenv("GAME_STATE_DIR", str(tmp_path / "state"))
    engine, tokens = make_game(db_url)
    store_results(engine, {"red": "correct", "blue": "failed"}, rounds=3)
    with engine.connect() as conn:
        old_key = games.game_row(conn).key
        old_secret = games.read_stream_secret(conn)
    refused = cli(db_url, "new", ok=False)
    assert refused.exit_code == 1 and "the game is running" in refused.output
    cli(db_url, "control", "finish")
    owner = f"{socket.gethostname()}:{os.getpid()}:test"  # a live loop: this very process
    shards.acquire_lease(engine, owner)
    busy = cli(db_url, "new", ok=False)
    assert busy.exit_code == 1 and "still serves this game" in busy.output
    shards.release_lease(engine, owner)
    done = cli(db_url, "new").output
    (export,) = (tmp_path / "state" / "exports").iterdir()
    assert str(export) in done and "3 requests" in done and "2 teams kept" in done
    assert len(pd.read_csv(export / "results.csv")) == 6  # the old game, kept in the export
    with engine.connect() as conn:
        row = games.game_row(conn)
        assert row.state == "lobby" and row.key != old_key
        assert games.read_stream_secret(conn) != old_secret  # a new game, a new stream
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.requests)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.results)).scalar() == 0
        assert registry.authenticate(conn, tokens["red"])["name"] == "red"
    assert "running" in cli(db_url, "control", "start").output  # the new game plays


def test_new_on_an_empty_database_creates_the_game(tmp_path):
    """The guide's day begins with `new`: on an empty database it is `init`."""
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    assert "0 requests of the old game removed, 0 teams kept" in cli(url, "new").output
    with database.make_engine(url).connect() as conn:
        assert games.game_row(conn).state == "lobby"


def read_rows(engine):
    """requests (by request id) and results (as (request id, team) -> row)."""
    with engine.connect() as conn:
        reqs = {r.request_id: r for r in conn.execute(sa.select(schema.requests))}
        res = {
            (r.request_id, r.name): r
            for r in conn.execute(
                sa.select(schema.results, schema.requests.c.request_id, schema.teams.c.name)
                .join(schema.requests)
                .join(schema.teams)
            )
        }
    return reqs, res


def start_run(db_url, log_path, *args):
    """`game-server run` as a real process, its log going to `log_path`."""
    return subprocess.Popen(
        [sys.executable, "-m", "game_server", "--db", db_url, "run", "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=open(log_path, "w"),
    )


def wait_for(condition, limit=20.0):
    """Wait until `condition()` is true (or fail after `limit` seconds)."""
    end = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_kill_dash_9_mid_run_loses_and_duplicates_nothing(db_url, tmp_path):
    game_path = tmp_path / "long.toml"
    game_path.write_text(
        FAST_GAME.read_text().replace("duration = 1.5", "duration = 60"), encoding="utf-8"
    )
    cli(db_url, "init", "--game", str(game_path))
    engine = database.make_engine(db_url)
    apis = TeamAPIs()
    try:
        team_apis = {
            "good": apis.start(peeking(engine)),
            "slow": apis.start(delayed(0.2, json_answer({"pred": 1}))),  # rounds in flight
            "wrong": apis.start(peeking(engine, flip=True)),
        }
        for name, api in team_apis.items():
            cli(db_url, "teams", "add", name, "--url", api.url)

        first = start_run(db_url, tmp_path / "first.log", "--start")
        wait_for(lambda: len(team_apis["slow"].requests) >= 20)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        with engine.connect() as conn:
            before = games.game_row(conn)
            seq_before = next_seq(conn)

        second = start_run(db_url, tmp_path / "second.log")
        wait_for(
            lambda: (
                read_rows(engine)[0]
                and max(read_rows(engine)[0].values(), key=lambda r: r.seq).seq > seq_before + 10
            )
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(15) == 0
    finally:
        apis.close()

    second_log = (tmp_path / "second.log").read_text()
    reqs, res = read_rows(engine)
    statuses = {r.status for r in reqs.values()}
    assert statuses <= {"scored", "void"}  # nothing left half-done
    void = {rid for rid, r in reqs.items() if r.status == "void"}
    if void:
        assert f"count={len(void)}" in second_log
    for name, api in team_apis.items():
        answered = {req.json()["id"] for req in api.requests}
        for rid in answered:  # every request a team saw is scored for it, or void for all
            assert (rid, name) in res or rid in void, (rid, name)
    for rid, r in reqs.items():  # a round is scored for every team or for none
        count = sum((rid, name) in res for name in team_apis)
        assert count == (3 if r.status == "scored" else 0), rid
    with engine.connect() as conn:
        totals = dict(
            conn.execute(
                sa.select(
                    schema.team_totals.c.team_id, sa.func.sum(schema.team_totals.c.points)
                ).group_by(schema.team_totals.c.team_id)
            ).all()
        )
        sums = dict(
            conn.execute(
                sa.select(schema.results.c.team_id, sa.func.sum(schema.results.c.points)).group_by(
                    schema.results.c.team_id
                )
            ).all()
        )
        ref = conn.execute(
            sa.select(
                sa.func.sum(schema.phase_totals.c.requests),
                sa.func.sum(schema.phase_totals.c.void),
            )
        ).one()
        after = games.game_row(conn)
    assert totals == sums
    assert tuple(ref) == (len(reqs) - len(void), len(void))
    good_id = next(r.team_id for (rid, name), r in res.items() if name == "good")
    scored = sum(r.status == "scored" for r in reqs.values())
    assert totals[good_id] == scored  # the peeking team is right every time
    # the game went on where it was: same phase, more time run, the stream continued
    assert after.state == "running" and after.phase_index == before.phase_index == 0
    assert after.phase_elapsed > PhaseClock.of(before).at(before.loop_heartbeat) - 0.01
    assert sorted(r.seq for r in reqs.values()) == list(range(1, len(reqs) + 1))
    assert after.loop_owner is None  # the clean stop released the lease
