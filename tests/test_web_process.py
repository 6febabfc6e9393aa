"""`game-server run` serves the pages from a process of its own (issue 15): the game loop
shares nothing with them but the database; the web process is restarted if it dies and
stopped with the loop, and its database URL is never on a command line."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from starter_helpers import free_port

pytestmark = pytest.mark.slow

STARTED = re.compile(r"web process started pid=(\d+)")


def wait_for(condition, limit: float = 60.0):
    """The first truthy value of `condition()` (fails after `limit` seconds)."""
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def healthy(port: int) -> bool:
    """Whether the web app answers /api/health."""
    try:
        return requests.get(f"http://127.0.0.1:{port}/api/health", timeout=5).ok
    except requests.RequestException:
        return False


def web_pids(log: Path) -> list[int]:
    """The pids of the web processes `run` started, in order (from its log)."""
    return [int(pid) for pid in STARTED.findall(log.read_text())]


def parent_of(pid: int) -> int:
    """The parent pid of a process."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    """Whether a process exists (not a zombie: `run` reaps its child)."""
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_the_web_app_runs_in_its_own_process_restarted_and_stopped_with_the_loop(tmp_path):
    url = f"sqlite:///{tmp_path / 'game.sqlite'}"
    port = free_port()
    log = tmp_path / "run.log"
    env = {**os.environ, "GAME_DATABASE_URL": url}
    with open(log, "w") as err:
        run = subprocess.Popen(
            [sys.executable, "-m", "game_server", "run", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        wait_for(lambda: healthy(port))
        first = web_pids(log)[0]
        assert first != run.pid and parent_of(first) == run.pid  # another process
        cmdline = Path(f"/proc/{first}/cmdline").read_bytes().decode()
        assert "game_server\0web\0" in cmdline and "game.sqlite" not in cmdline  # not for `ps`
        environ = Path(f"/proc/{first}/environ").read_bytes().split(b"\0")
        assert f"GAME_DATABASE_URL={url}".encode() in environ  # only its user and root see it

        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: web_pids(log)[1:])[0]
        assert f"web process died pid={first} exit=-9; restarting it" in log.read_text()
        wait_for(lambda: healthy(port))
        assert second != first and parent_of(second) == run.pid

        run.send_signal(signal.SIGTERM)
        assert run.wait(30) == 0
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert not alive(second)  # stopped with the loop
    assert f"web process stopped pid={second} exit=0" in log.read_text()
    with socket.socket() as sock:  # and the port is free again
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_the_web_process_ends_when_run_is_killed(tmp_path):
    url = f"sqlite:///{tmp_path / 'game.sqlite'}"
    port = free_port()
    log = tmp_path / "run.log"
    with open(log, "w") as err:
        run = subprocess.Popen(
            [sys.executable, "-m", "game_server", "run", "--port", str(port)],
            env={**os.environ, "GAME_DATABASE_URL": url},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        wait_for(lambda: healthy(port))
        web = web_pids(log)[0]
        os.kill(run.pid, signal.SIGKILL)  # no clean-up code runs in `run`
        run.wait(10)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    wait_for(lambda: not alive(web), 30)  # its stdin closed: it stopped by itself
