"""A game across two shards: `game-server run --shard 1/2` and `2/2`, real processes, PostgreSQL.

Six real team APIs on loopback; teams 1, 3, 5 belong to shard 1 and 2, 4, 6 to shard 2.
The shards share nothing but the game database. The test plays a phase change, a
`kill -9` of shard 2, the other shard going on alone, and shard 2's restart.
"""

import os
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from engine_helpers import FAST_GAME
from readme_blocks import LONG_RUNNING, server_blocks
from starter_helpers import free_port
from team_apis import TeamAPIs, json_answer

from game_server.cli.main import main
from game_server.storage import database, schema
from game_server.storage.shards import Shard

TEAMS = 6
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "INSTRUCTOR.md"


def cli(db_url, *args):
    """`game-server --db URL ARGS...` in this process; exit 0 checked."""
    result = CliRunner().invoke(main, ["--db", db_url, *args])
    assert result.exit_code == 0, result.output
    return result.output


def start_shard(db_url, shard, log_path, *args):
    """`game-server run --shard I/N` as a real process, logging to `log_path`."""
    return subprocess.Popen(
        [sys.executable, "-m", "game_server", "--db", db_url, "run", "--shard", shard, *args],
        stdout=subprocess.DEVNULL,
        stderr=open(log_path, "w"),
    )


def in_bash(command, env, log_path):
    """`bash -c COMMAND` as a process group of its own, logging to `log_path`."""
    return subprocess.Popen(
        ["bash", "-c", command], env=env, stderr=open(log_path, "w"), start_new_session=True
    )


def wait_for(condition, limit=20.0, what="a condition"):
    """Wait until `condition()` is true (fail after `limit` seconds)."""
    end = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def results(engine):
    """Every stored result as (seq, team_id) -> points."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.results.c.seq, schema.results.c.team_id, schema.results.c.points)
        )
        return {(r.seq, r.team_id): r.points for r in rows}


def top_seq(engine, team_ids):
    """The highest seq with a result for any of `team_ids` (0 before any)."""
    res = results(engine)
    return max((seq for seq, team in res if team in team_ids), default=0)


def check_same_rounds(team_apis, reqs, by_seq, both, res):
    """Every team got the request ids of its shard's rounds, each once; the rounds both
    shards scored have a result for every team."""
    for team, api in team_apis.items():
        ids = [req.json()["id"] for req in api.requests if req.method == "POST"]
        assert len(ids) == len(set(ids)), f"team {team} got a request twice"
        shard = Shard(1, 2) if Shard(1, 2).owns(team) else Shard(2, 2)
        sent = {reqs[s].request_id for s, parts in by_seq.items() if shard.index in parts}
        assert set(ids) == sent, f"team {team}"
    scored = [s for s in both if {p["status"] for p in by_seq[s].values()} == {"scored"}]
    assert len(scored) > 60
    for seq in scored:
        assert all((seq, team) in res for team in range(1, TEAMS + 1)), seq


def test_shard_parse_refuses_bad_input_in_one_line():
    assert Shard.parse("2/3") == Shard(2, 3) and str(Shard(2, 3)) == "2/3"
    for bad in ("0/2", "3/2", "1/0", "x", "1/2/3", "-1/2", "1/65"):
        with pytest.raises(ValueError, match="bad shard") as info:
            Shard.parse(bad)
        assert "\n" not in str(info.value)
    assert [t for t in range(1, 7) if Shard(1, 2).owns(t)] == [1, 3, 5]
    refused = CliRunner().invoke(main, ["--db", "sqlite://", "run", "--shard", "3/2"])
    assert refused.exit_code == 1 and refused.output.strip().splitlines() == [
        "Error: --shard: bad shard '3/2': a shard is I/N with 1 <= I <= N <= 64, e.g. 1/2"
    ]


@pytest.mark.postgres
@pytest.mark.slow
def test_two_shards_send_the_same_rounds_and_survive_a_kill(pg_url, tmp_path):
    """Two shards on one game: the same request ids at the same time, one kill -9, a restart.

    Send times: each shard stores its own send time of each round (`round_shards.sent_at`);
    the test asserts the MEDIAN of |shard 1 - shard 2| over the rounds both sent is below
    50 ms. The median, not each round: the first burst after the start comes when each
    shard's poll of the game row sees the game running (up to 0.3 s apart by design), and
    a busy CI machine may delay a single round; neither moves the median of ~100 rounds.
    """
    game_path = tmp_path / "shards.toml"  # phase 0 for 2.5 s (a phase change), phase 1 long
    text = FAST_GAME.read_text().replace("duration = 1.5", "duration = 60")
    game_path.write_text(text.replace("duration = 60", "duration = 2.5", 1), encoding="utf-8")
    cli(pg_url, "init", "--game", str(game_path))
    engine = database.make_engine(pg_url)
    apis = TeamAPIs()
    procs = []
    try:
        team_apis = {}
        for i in range(1, TEAMS + 1):
            api = apis.start(json_answer({"pred": 1}))
            cli(pg_url, "teams", "add", f"team-{i}", "--url", api.url)
            team_apis[i] = api
        one, two = [1, 3, 5], [2, 4, 6]
        first = start_shard(pg_url, "1/2", tmp_path / "one.log", "--no-web")
        second = start_shard(pg_url, "2/2", tmp_path / "two.log", "--no-web")
        procs += [first, second]
        for name in ("one", "two"):
            wait_for(
                lambda n=name: "game loop started" in (tmp_path / f"{n}.log").read_text(), what=name
            )
        cli(pg_url, "control", "start")
        wait_for(lambda: top_seq(engine, two) > 80, what="rounds of both phases")  # phase 1 from 51

        os.kill(second.pid, signal.SIGKILL)
        second.wait(10)
        before_kill = results(engine)
        killed_at = max(seq for seq, team in before_kill if team in two)
        # the other shard goes on scoring its teams while shard 2 is dead
        wait_for(lambda: top_seq(engine, one) > killed_at + 20, what="shard 1 alone")

        second = start_shard(pg_url, "2/2", tmp_path / "two-again.log", "--no-web")
        procs.append(second)
        restarted_at = top_seq(engine, one)
        wait_for(lambda: top_seq(engine, two) > restarted_at + 20, what="the restarted shard")
        for proc in (first, second):
            proc.send_signal(signal.SIGTERM)
        assert first.wait(15) == 0 and second.wait(15) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        apis.close()

    with engine.connect() as conn:
        shard_rows = conn.execute(sa.select(schema.round_shards)).mappings().all()
        reqs = {r.seq: r for r in conn.execute(sa.select(schema.requests))}
        totals = dict(
            conn.execute(
                sa.select(
                    schema.team_totals.c.team_id, sa.func.sum(schema.team_totals.c.points)
                ).group_by(schema.team_totals.c.team_id)
            ).all()
        )
        phase_over = conn.execute(
            sa.select(sa.func.count()).where(schema.control_log.c.action == "phase-over")
        ).scalar_one()
    res = results(engine)
    by_seq = defaultdict(dict)
    for r in shard_rows:
        by_seq[r["seq"]][r["shard"]] = r
    both = sorted(s for s, parts in by_seq.items() if set(parts) == {1, 2})
    assert len(both) > 60

    check_same_rounds(team_apis, reqs, by_seq, both, res)

    # the send times of a round across the shards: median of the differences < 50 ms
    gaps = [abs(by_seq[s][1]["sent_at"] - by_seq[s][2]["sent_at"]) for s in both]
    assert statistics.median(gaps) < 0.050, sorted(gaps)[len(gaps) // 2 - 3 : len(gaps) // 2 + 3]

    # totals are consistent: each team's total is the sum of its stored results
    sums = defaultdict(int)
    for (_, team), points in res.items():
        sums[team] += points
    assert totals == dict(sums)
    assert phase_over == 1  # both shards ran the phase change; it landed once

    # kill -9 lost and duplicated nothing: every result stored before the kill remains,
    # nothing is left in flight, and the restarted shard voided only its own rounds
    assert before_kill.items() <= res.items()
    assert {r["status"] for r in shard_rows} <= {"scored", "void"}
    assert {r.status for r in reqs.values()} <= {"scored", "void"}
    void = [r for r in shard_rows if r["status"] == "void"]
    assert all(r["shard"] == 2 and r["seq"] <= killed_at + 30 for r in void)
    for r in void:  # a void round counts for none of the shard's teams
        assert not any((r["seq"], team) in res for team in two)
    # the other shard went on while shard 2 was dead, and shard 2 went on after its restart
    assert any(seq > killed_at + 20 for seq, team in res if team in one)
    assert any(seq > restarted_at + 20 for seq, team in res if team in two)
    again = (tmp_path / "two-again.log").read_text()
    assert "other shards alive shard=2/2 alive=1/2; the clock runs on" in again


@pytest.mark.postgres
@pytest.mark.slow
def test_the_guides_shard_commands_work_as_typed(pg_url, tmp_path):
    """docs/INSTRUCTOR.md's "A game across several machines": its blocks run as typed."""
    section = GUIDE.read_text().split("## A game across several machines", 1)[1]
    blocks = server_blocks(section.split("\n## ", 1)[0])
    assert [b.commands[0].split("#")[0].strip() for b in blocks] == [
        "game-server run --shard 1/2 --port 8000",
        "game-server run --shard 2/2 --no-web",
        "game-server control start",
    ]
    game_path = tmp_path / "long.toml"
    game_path.write_text(FAST_GAME.read_text().replace("duration = 1.5", "duration = 60"))
    cli(pg_url, "init", "--game", str(game_path))
    engine = database.make_engine(pg_url)
    apis = TeamAPIs()
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    env = {**os.environ, "GAME_DATABASE_URL": pg_url, "PATH": path}
    port, procs = free_port(), []
    try:
        for i in (1, 2):
            cli(
                pg_url,
                "teams",
                "add",
                f"team-{i}",
                "--url",
                apis.start(json_answer({"pred": 0})).url,
            )
        for n, block in enumerate(blocks):
            command = block.commands[0].replace("--port 8000", f"--port {port}")
            if LONG_RUNNING not in block.tags:
                subprocess.run(["bash", "-c", command], env=env, check=True, capture_output=True)
                continue
            log = tmp_path / f"shard{n}.log"
            procs.append(in_bash(command, env, log))
            wait_for(lambda log=log: "game loop started" in log.read_text(), what=command)
        wait_for(lambda: {team for _, team in results(engine)} == {1, 2}, what="both teams scored")
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        codes = [proc.wait(15) for proc in procs]
        apis.close()
    assert codes == [0, 0]
