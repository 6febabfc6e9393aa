"""`game-server demo` as a newcomer runs it: real bot processes serving the participant
starter, a real game, and nothing left behind (no process, no port) however it ends."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from starter_helpers import free_port

from game_server.cli.main import main
from game_server.demo.bots import VARIANTS, team_plan
from game_server.demo.report import phase_table, standings_table
from game_server.demo.run import compress
from game_server.scenario.gamefile import builtin_game_path, load_game_file

GAME = Path(__file__).parent / "games" / "demo_short.toml"  # every phase in 50 s


def test_bot_teams_cycle_through_the_variants():
    names = [name for name, _ in team_plan(7)]
    assert names == [*VARIANTS, "starter-2", "careful-2"]
    assert {v.name for _, v in team_plan(5)} == {
        "starter",
        "careful",
        "leaky",
        "devserver",
        "flaky",
    }


def test_compress_scales_every_phase_and_the_label_delay():
    game = load_game_file(builtin_game_path("demo"))
    short = compress(game, 60)
    assert short.duration == pytest.approx(60)
    assert [p.duration / game.duration for p in game.phases] == pytest.approx(
        [p.duration / 60 for p in short.phases]
    )
    assert [p.rate for p in short.phases] == [p.rate for p in game.phases]
    assert short.settings.label_delay == pytest.approx(game.settings.label_delay * 60 / 300)
    assert compress(game, 600).settings.label_delay == game.settings.label_delay


def test_standings_table_compares_with_the_oracle_and_the_baseline():
    board = {
        "teams": [
            {"rank": 1, "name": "careful", "points": 90, "correct": 95, "wrong": 0, "failed": 5},
            {"rank": 2, "name": "leaky", "points": 70, "correct": 70, "wrong": 30, "failed": 0},
        ],
        "reference": {"requests": 100, "void": 0, "oracle_points": 88.5, "baseline_points": 70.2},
    }
    lines = standings_table(board).splitlines()
    assert lines[1].split() == ["1", "careful", "90", "95", "0", "5", "+1.5", "+19.8"]
    assert lines[2].split()[-2:] == ["-18.5", "-0.2"]
    assert "88.5" in lines[3] and "70.2" in lines[4] and "100 requests" in lines[5]


def test_phase_table_shows_where_points_were_lost():
    table = phase_table(["warm-up", "peak traffic"], {"dev": {0: 40, 1: -90}, "ok": {0: 41}})
    lines = table.splitlines()
    assert lines[0].split() == ["team", "warm-up", "peak", "traffic"]
    assert lines[1].split() == ["ok", "41", "0"] and lines[2].split() == ["dev", "40", "-90"]


def test_a_busy_port_is_a_one_line_error_before_anything_starts(
    tmp_path, monkeypatch, keep_logging
):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["demo", "--no-browser", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: port {port} is in use (another game server?): choose one with --port"
    )
    assert not (tmp_path / "instance").exists()  # no folder, no process: nothing started


# --- the real thing: a demo run as a subprocess --------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One working directory for every run: running the demo again must work."""
    return tmp_path_factory.mktemp("demo")


def start_demo(workdir: Path, port: int, *args: str) -> tuple[subprocess.Popen, Path]:
    """`game-server demo --no-browser` in `workdir`; the process and its output file."""
    out = workdir / f"demo-{port}.out"
    with open(out, "wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "game_server", "demo", "--no-browser", "--port", str(port)]
            + list(args),
            cwd=workdir,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    return process, out


def wait_for_text(process: subprocess.Popen, out: Path, text: str, limit: float) -> str:
    """The demo's output once it holds `text` (fails when the demo ends or time is up)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        output = out.read_text()
        if text in output:
            return output
        assert process.poll() is None, f"the demo ended early: {output}"
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} within {limit} s: {out.read_text()}")


def record_of(workdir: Path, output: str) -> dict:
    """The demo.json of the run whose output this is."""
    folder = next(line for line in output.splitlines() if line.startswith("demo folder: "))
    folder = Path(folder.removeprefix("demo folder: ").split(" (")[0])
    assert folder.parent == workdir / "instance"
    return json.loads((folder / "demo.json").read_text())


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (zombies included: nobody reaped them)."""
    return Path(f"/proc/{pid}").exists()


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that mention `text` (the demo's folder)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # the process ended while we looked
        if text in line:
            found.append(f"{cmdline.parent.name}: {line}")
    return found


def listening(port: int) -> bool:
    """Something listens on the port (the kernel's socket tables).

    Not "a bind fails": once the demo is gone its ports are free ones of the ephemeral
    range, and another process's outgoing connection may take one at any moment.
    """
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def assert_nothing_left(record: dict, wait: float = 0.0) -> None:
    """No process the demo started is alive, none mentions its folder, nothing listens on its ports
    (after `wait` seconds at most: processes whose parent was killed stop by themselves)."""
    pids = set(record["pids"]) | {bot["pid"] for bot in record["bots"]}
    assert len(pids) > len(record["bots"])  # the bots and the training processes
    ports = [record["port"], *(bot["port"] for bot in record["bots"])]
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and (
        any(alive(p) for p in pids) or any(listening(p) for p in ports)
    ):
        time.sleep(0.2)
    assert [p for p in pids if alive(p)] == []
    assert processes_mentioning(record["folder"]) == []
    assert [p for p in ports if listening(p)] == []  # the web process's too


def points_now(port: int) -> dict:
    """{team: points} from the demo's leaderboard API."""
    board = requests.get(f"http://127.0.0.1:{port}/api/leaderboard", timeout=5).json()
    return {t["name"]: t["points"] for t in board["teams"]}


def team_table(database: str, sql: str) -> dict:
    """{team name: value} from a query of (name, value) rows on the game database."""
    with sqlite3.connect(database) as conn:
        return dict(conn.execute(sql).fetchall())


@pytest.mark.slow
def test_a_whole_demo_game_with_five_bot_teams_at_the_exercise_level(workdir):
    """One whole game (the suite's time: one game checks both): the five bots play every
    phase, and at the exercise level the starter bot begins with the leak and finds it."""
    port = free_port()
    process, out = start_demo(workdir, port, "--game", str(GAME), "--starter", "exercises")
    try:
        wait_for_text(process, out, "first round scored", 60)
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
        first = points_now(port)
        assert set(first) == {"starter", "careful", "leaky", "devserver", "flaky"}
        time.sleep(3)
        assert points_now(port) != first  # the leaderboard moves
        process.wait(timeout=150)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(30)
    output = out.read_text()
    assert process.returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output and "Final standings:" in output
    assert f"http://127.0.0.1:{port}/admin (token: " in output
    record = record_of(workdir, output)
    assert_every_bot_played(record)
    assert_the_starter_bot_found_the_leak(record, output)
    assert (Path(record["folder"]) / "export" / "results.csv").is_file()
    assert str(Path(record["folder"]) / "export") in output
    assert_nothing_left(record)


def assert_every_bot_played(record: dict) -> None:
    """Every bot was asked and scored all game long, each as its variant plays."""
    db = record["database"]
    results = team_table(
        db, "SELECT t.name, count(*) FROM results r JOIN teams t ON t.id = r.team_id GROUP BY 1"
    )
    assert set(results) == {"starter", "careful", "leaky", "devserver", "flaky"}
    assert min(results.values()) > 100  # every bot was asked, and scored, all game long
    points = team_table(
        db,
        "SELECT t.name, sum(points) FROM team_totals x JOIN teams t ON t.id = x.team_id GROUP BY 1",
    )
    assert points["careful"] > points["leaky"], points
    failures = team_table(
        db,
        "SELECT t.name || ':' || f.reason || ':' || f.phase_index, sum(f.count) "
        "FROM team_failures f JOIN teams t ON t.id = f.team_id GROUP BY 1",
    )
    assert any(k.startswith("flaky:connect_error:") for k in failures)  # it went down
    assert failures.get("devserver:timeout:3", 0) > 0  # single-threaded in the peak phase
    folder = Path(record["folder"])
    careful_log = (folder / "bots" / "careful" / "api.log").read_text()
    assert "feedback pulled" in careful_log and "retrain tried" in careful_log
    leaky = json.loads((folder / "bots" / "leaky" / "model.json").read_text())
    assert "collection_calls" in leaky["features"] and leaky["scores"]["holdout"]["accuracy"] > 0.95


def assert_the_starter_bot_found_the_leak(record: dict, output: str) -> None:
    """At the exercise level the starter bot begins with the leak, then serves without it."""
    assert "starter level: exercises" in output
    assert "starter: found the leak, serves a model without collection_calls" in output
    assert record["starter_level"] == "exercises"
    bots = {bot["name"]: bot for bot in record["bots"]}
    found_at = bots["starter"]["finds_leak_at"]
    assert found_at == pytest.approx(0.3 * 50) and bots["careful"]["finds_leak_at"] is None
    # What the game saw: "no default" to everyone while the leak was in, then the risk.
    says_default = team_table(
        record["database"],
        "SELECT t.name || ':' || (q.sent_at - (SELECT min(sent_at) FROM requests) "
        f">= {found_at + 2}), avg(r.pred) FROM results r JOIN teams t ON t.id = r.team_id "
        "JOIN requests q ON q.seq = r.seq WHERE r.outcome != 'failed' "
        f"AND abs(q.sent_at - (SELECT min(sent_at) FROM requests) - {found_at + 1}) > 1 "
        "GROUP BY 1",
    )
    assert says_default["starter:0"] == 0.0 and says_default["starter:1"] > 0.1
    assert says_default["careful:0"] > 0.05  # careful never had the leak
    folder = Path(record["folder"])
    starter = json.loads((folder / "bots" / "starter" / "model.json").read_text())
    assert "collection_calls" not in starter["features"]
    assert "version=starter-1" in (folder / "bots" / "starter" / "api.log").read_text()


@pytest.mark.slow
def test_ctrl_c_during_the_game_stops_everything(workdir):
    port = free_port()
    process, out = start_demo(workdir, port, "--duration", "120", "--teams", "3")
    try:
        output = wait_for_text(process, out, "first round scored", 90)
        time.sleep(1.5)
        record = record_of(workdir, output)
        assert all(alive(bot["pid"]) for bot in record["bots"])
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = out.read_text()
    assert process.returncode == 0, output
    assert "Standings when stopped:" in output
    assert_nothing_left(record)
    with sqlite3.connect(record["database"]) as conn:
        assert conn.execute("SELECT state FROM games").fetchone()[0] == "running"  # not finished
        assert conn.execute("SELECT count(*) FROM requests WHERE status = 'sent'").fetchone() == (
            0,
        )  # rounds in flight were stored before the demo stopped


@pytest.mark.slow
def test_bots_exit_by_themselves_when_the_demo_is_killed(workdir):
    port = free_port()
    process, out = start_demo(workdir, port, "--teams", "2")
    try:
        output = wait_for_text(process, out, "game started", 90)
        record = record_of(workdir, output)
        os.kill(process.pid, signal.SIGKILL)  # no clean-up code can run
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert_nothing_left(record, wait=10)  # the bots saw their stdin close and stopped
