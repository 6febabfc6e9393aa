"""`game-server web --workers N` (issue 16): N worker processes on one socket, supervised.

Every worker serves the same document; a worker that dies is restarted while the others
keep serving, and one that hangs (issue 25: SIGSTOP, so it neither answers nor beats) is
killed and replaced; SIGTERM or SIGINT of the parent, or its death by SIGKILL, leaves no
worker.
Which worker answers is forced by stopping the others (SIGSTOP): a stopped process
accepts nothing, so a new connection can only go to the one left running.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from starter_helpers import free_port
from test_web_process import alive, healthy, parent_of, wait_for

pytestmark = pytest.mark.slow

WORKER = re.compile(r"web worker started pid=(\d+) slot=(\d+)")
HUNG = 3  # seconds: `--worker-timeout` of the hung-worker test (30 by default)


class Web:
    """A running `game-server web --workers N`: its process, port and log."""

    def __init__(self, process: subprocess.Popen, port: int, log: Path):
        """What `started_web` made."""
        self.process, self.port, self.log = process, port, log

    def workers(self) -> list[int]:
        """The worker pids the parent logged, in order of start."""
        return [int(pid) for pid, _ in WORKER.findall(self.log.read_text())]

    def running(self) -> list[int]:
        """The workers alive now."""
        return [pid for pid in self.workers() if alive(pid)]

    def board(self) -> dict:
        """The leaderboard, on a new connection, without its clock (it ticks)."""
        answer = requests.get(f"http://127.0.0.1:{self.port}/api/leaderboard", timeout=10)
        assert answer.status_code == 200
        return {k: v for k, v in answer.json().items() if k != "clock"}


@contextlib.contextmanager
def started_web(tmp_path: Path, workers: int = 2, command: str = "web", *more: str):
    """`game-server <command> --workers N` on a fresh SQLite game; killed if a test fails."""
    env = {**os.environ, "GAME_DATABASE_URL": f"sqlite:///{tmp_path / 'game.sqlite'}"}
    subprocess.run(
        [sys.executable, "-m", "game_server", "init"], env=env, check=True, capture_output=True
    )
    port, log = free_port(), tmp_path / "web.log"
    args = [command, "--port", str(port), "--workers", str(workers), *more]
    with open(log, "w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "game_server", *args], env=env, stderr=err, stdout=err
        )
    web = Web(process, port, log)
    try:
        wait_for(lambda: healthy(port) and len(web.running()) == workers)
        yield web
    finally:
        for pid in web.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in web.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def only(web: Web, serving: int):
    """Every worker but `serving` stopped (SIGSTOP) for the block."""
    others = [pid for pid in web.running() if pid != serving]
    for pid in others:
        with contextlib.suppress(ProcessLookupError):  # one killed may be reaped meanwhile
            os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in others:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def test_every_worker_is_a_child_of_the_parent_and_serves_the_same_document(tmp_path):
    with started_web(tmp_path, workers=3) as web:
        pids = web.running()
        assert len(set(pids)) == 3 and web.process.pid not in pids
        assert all(parent_of(pid) == web.process.pid for pid in pids)
        boards = []
        for pid in pids:
            with only(web, pid):
                boards.append(web.board())
        assert boards[0]["reference"] is not None and "teams" in boards[0]
        assert boards[1:] == boards[:-1]  # all equal


def test_a_dead_worker_is_restarted_and_the_others_keep_serving(tmp_path):
    with started_web(tmp_path, workers=2) as web:
        first, second = web.running()
        os.kill(first, signal.SIGKILL)
        with only(web, second):  # at once, before any restart: the other one answers
            assert web.board()["game"]
        third = wait_for(lambda: [p for p in web.running() if p not in (first, second)])[0]
        died = f"web worker died pid={first} exit=-9 slot=0; restarting it"
        assert died in web.log.read_text()
        assert parent_of(third) == web.process.pid
        with only(web, third):  # and the new one serves
            assert web.board()["game"]


def test_a_hung_worker_is_killed_and_replaced(tmp_path):
    with started_web(tmp_path, 2, "web", "--worker-timeout", str(HUNG)) as web:
        hung, other = web.running()
        with only(web, hung):  # it has served, so its loop has turned: it has beaten
            assert web.board()["game"]
        os.kill(hung, signal.SIGSTOP)  # alive, but it answers and beats no more
        new = wait_for(lambda: [p for p in web.running() if p not in (hung, other)])[0]
        text = web.log.read_text()
        assert re.search(rf"web worker hung pid={hung} slot=0: no heartbeat for \d+ s", text)
        assert f"web worker died pid={hung} exit=-9 slot=0; restarting it" in text
        assert not alive(hung) and alive(other)  # the other one was never silent
        assert parent_of(new) == web.process.pid
        with only(web, new):  # and the new one serves
            assert web.board()["game"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_sigint_of_the_parent_stops_every_worker(tmp_path, sig):
    with started_web(tmp_path, workers=2) as web:
        pids = web.running()
        web.process.send_signal(sig)
        assert web.process.wait(30) == 0
        assert not [pid for pid in pids if alive(pid)]
        text = web.log.read_text()
        assert all(f"web worker stopped pid={pid} exit=0" in text for pid in pids)
        assert not healthy(web.port)  # nothing listens any more


def test_a_parent_killed_by_sigkill_leaves_no_worker(tmp_path):
    with started_web(tmp_path, workers=2) as web:
        pids = web.running()
        web.process.kill()  # no clean-up code runs in the parent
        web.process.wait(10)
        wait_for(lambda: not [pid for pid in pids if alive(pid)], 30)


def test_run_serves_the_pages_from_workers_and_stops_them_all(tmp_path):
    with started_web(tmp_path, workers=2, command="run") as web:
        pids = web.running()
        supervisor = parent_of(pids[0])
        assert supervisor != web.process.pid and parent_of(supervisor) == web.process.pid
        assert parent_of(pids[1]) == supervisor
        web.process.send_signal(signal.SIGTERM)
        assert web.process.wait(30) == 0
        assert not alive(supervisor) and not [pid for pid in pids if alive(pid)]
