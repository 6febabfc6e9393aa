"""The game's port survives the game's restarts (issue 21): systemd socket activation.

The test plays systemd: it makes the listening socket, starts `game-server run` (or `web`)
with it as fd 3 and LISTEN_PID/LISTEN_FDS set, kills the game and starts it again on the
same socket. While the game is down the port stays held (another user cannot listen on it)
and a connection made meanwhile is answered by the restarted game.
"""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from starter_helpers import free_port
from test_web_process import healthy, wait_for

from game_server.processes import activation

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
# What systemd does: the socket as fd 3, LISTEN_PID the pid of the process it starts.
ACTIVATE = 'LISTEN_PID=$$ LISTEN_FDS=1; export LISTEN_PID LISTEN_FDS; exec "$@" 3<&"$FD"'


def held_socket() -> socket.socket:
    """A listening socket on a free loopback port (systemd's ListenStream)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def activated(sock: socket.socket, env: dict, *args: str) -> subprocess.Popen:
    """`game-server ARGS` started with `sock` as systemd passes it (in a session of its own)."""
    argv = ["bash", "-c", ACTIVATE, "bash", sys.executable, "-m", "game_server", *args]
    return subprocess.Popen(
        argv,
        env={**env, "FD": str(sock.fileno())},
        pass_fds=[sock.fileno()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill_all(proc: subprocess.Popen) -> None:
    """SIGKILL the game and its web process (a crash), and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def nobody_can_listen_on(port: int) -> str:
    """What another user gets when it tries to listen on 127.0.0.1:port."""
    script = (
        "import socket, sys\ns = socket.socket()\n"
        "try:\n    s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); print('listening')\n"
        "except OSError as exc:\n    print(exc.strerror)\n"
    )
    argv = [
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        sys.executable,
        "-c",
        script,
        str(port),
    ]
    return subprocess.run(argv, capture_output=True, text=True, cwd="/", check=True).stdout.strip()


def test_run_serves_on_systemds_socket_which_stays_held_across_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'game.sqlite'}"
    env = {**os.environ, "GAME_DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "game_server", "init"], env=env, check=True, capture_output=True
    )
    sock = held_socket()
    port, unused = sock.getsockname()[1], free_port()
    game = activated(sock, env, "run", "--port", str(unused))
    waiting = None
    try:
        wait_for(lambda: healthy(port))
        assert not healthy(unused)  # systemd's socket, not one of its own
        kill_all(game)
        if os.geteuid() == 0:
            assert nobody_can_listen_on(port) == "Address already in use"
        waiting = socket.create_connection(("127.0.0.1", port), timeout=60)
        waiting.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        game = activated(sock, env, "run", "--port", str(unused))  # the restart
        answer = waiting.recv(4096)  # the connection made while the game was down
        assert re.match(rb"HTTP/1\.1 200 ", answer), answer
        assert healthy(port)
    finally:
        kill_all(game)
        if waiting is not None:
            waiting.close()
        sock.close()


def test_web_serves_on_systemds_socket(tmp_path):
    url = f"sqlite:///{tmp_path / 'game.sqlite'}"
    env = {**os.environ, "GAME_DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "game_server", "init"], env=env, check=True, capture_output=True
    )
    sock = held_socket()
    web = activated(sock, env, "web", "--port", str(free_port()))
    try:
        wait_for(lambda: healthy(sock.getsockname()[1]))
        assert requests.get(f"http://127.0.0.1:{sock.getsockname()[1]}/api/health").ok
    finally:
        kill_all(web)
        sock.close()


def test_activation_follows_sd_listen_fds(monkeypatch):
    monkeypatch.setenv("LISTEN_PID", str(os.getpid() + 1))  # a parent's: not for us
    monkeypatch.setenv("LISTEN_FDS", "1")
    assert activation.inherited_socket() is None
    assert "LISTEN_PID" not in os.environ and "LISTEN_FDS" not in os.environ  # unset
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    monkeypatch.setenv("LISTEN_FDS", "2")
    with pytest.raises(activation.ActivationError, match="^LISTEN_FDS=2: expected one"):
        activation.inherited_socket()
    assert activation.inherited_socket() is None  # nothing set: our own socket


def test_setup_writes_the_socket_unit_beside_the_service():
    script = (REPO / "scripts" / "setup_server.sh").read_text()
    socket_unit = script[script.index("socket_text() {") : script.index("unit_text() {")]
    assert "ListenStream=127.0.0.1:$GAME_PORT" in socket_unit
    assert "Requires=game-server.socket" in script
    assert "systemctl enable game-server.socket game-server" in script
