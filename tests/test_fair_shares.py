"""Fair shares: a team's runaway CPU and memory slow and kill only that team (limits.py).

The hog test plays the same short game twice against two healthy teams' APIs, each started
in its team's login shell (so in its team's cgroup, as a participant starts it): once
quiet, once while a third team runs a CPU hog on every core and a memory hog past its
ceiling. The healthy teams' p95 must stay within 2x of the quiet game's, the game and
both APIs must live, and the memory hog must be killed inside its own team. The
provisioning test checks that `users create` applies the limits (again, idempotently),
that a login lands in them, and that `users delete` removes them.
"""

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import accounts_helpers
import pytest
from accounts_helpers import ssh_as
from sshd_server import wait_for_port

from game_server.accounts import config, handout, limits, provision, teardown
from game_server.accounts.executors import LocalExecutor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import capacity_fleet as fleet  # noqa: E402 (the capacity bench's game, reused)

pytestmark = [pytest.mark.root, pytest.mark.postgres, pytest.mark.slow]
sshd, setup = accounts_helpers.sshd, accounts_helpers.setup  # the fixtures

CGROUPS = Path(limits.CGROUP_ROOT)
GAME_SECONDS = 8.0
# Stands for the starter's API: 3 ms of CPU a prediction (docs/PERFORMANCE.md), threads.
API = r"""
import http.server, json, sys, time

class Api(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, doc):
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer({"status": "ok"})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        end = time.thread_time() + 0.003
        while time.thread_time() < end:
            pass
        self.answer({"pred": 0})

    def log_message(self, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # a burst of 20 fits in the backlog, as in waitress's

Server(("127.0.0.1", int(sys.argv[1])), Api).serve_forever()
"""
# Two busy processes per core (a grid search with n_jobs=-1 and its BLAS threads), and a
# frame that does not fit, loaded again each time the kernel kills it.
HOG = r"""
for _ in $(seq $((2 * $(nproc)))); do /usr/bin/python3 -c 'while True: pass' & done
while true; do
  /usr/bin/python3 -c 'frames = []
while True: frames.append(b"x" * (32 << 20))'
done
"""


def cgroup_of(pid: int, controller: str) -> str:
    """The cgroup of process `pid` in `controller`'s hierarchy."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path
    return ""


def login(user: str, command: str) -> subprocess.Popen:
    """`command` in a login shell of `user` (it reads /etc/profile, as an SSH login does)."""
    return subprocess.Popen(
        ["runuser", "-l", user, "-c", command],
        cwd="/",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def the_api(user: str) -> int:
    """The process id of `user`'s API."""
    out = subprocess.run(["pgrep", "-u", user, "-f", "api.py"], capture_output=True, text=True)
    return int(out.stdout.split()[0])


def oom_kills(user: str) -> int:
    """How many processes the kernel killed inside `user`'s memory cgroup."""
    text = (CGROUPS / "memory" / f"workshop-{user}" / "memory.oom_control").read_text()
    return int(dict(line.split() for line in text.splitlines()).get("oom_kill", 0))


def play(workdir: Path, urls: list[str], name: str) -> tuple[dict, int | None]:
    """One short game against `urls`: its results, and the game's exit status if it died."""
    game_path, db_path = workdir / f"{name}.toml", workdir / f"{name}.sqlite"
    game_path.write_text(fleet.PEAK_GAME.format(seconds=GAME_SECONDS))
    fleet.prepare_game(f"sqlite:///{db_path}", game_path, urls)
    command = [
        sys.executable,
        "-m",
        "game_server",
        "--log-level",
        "WARNING",
        "--db",
        f"sqlite:///{db_path}",
        "run",
        "--no-web",
        "--start",
    ]
    with (workdir / f"{name}.log").open("w") as log:
        game = subprocess.Popen(command, stdout=log, stderr=log)
        deadline = time.monotonic() + GAME_SECONDS + 60
        while time.monotonic() < deadline and game.poll() is None:
            if fleet._game_state(db_path) == "finished":
                break
            time.sleep(0.5)
        died = game.poll()
        game.send_signal(signal.SIGTERM)
        game.wait(30)
    return fleet.read_results(db_path), died


@pytest.fixture
def teams(tmp_path):
    """Three Linux users with their limits (two healthy, one hog); all removed after."""
    tag = uuid.uuid4().hex[:4]
    users = [f"gsfair{tag}-{role}" for role in ("a", "b", "hog")]
    settings = config.Settings(limits=config.TeamLimits(memory_max_mb=256, tasks_max=64))
    ex = LocalExecutor()
    try:
        for user in users:
            subprocess.run(["useradd", "--create-home", "--", user], check=True)
            assert limits.apply_team(ex, settings, user) == limits.CGROUP_V1
        yield users
    finally:
        for user in users:
            subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True)
            limits.remove_team(ex, settings, user, None)
            subprocess.run(["userdel", "-r", "--", user], capture_output=True)


@pytest.mark.skipif(not (CGROUPS / "memory").is_dir(), reason="needs cgroup v1 (no systemd)")
def test_a_hog_team_slows_and_kills_only_itself(teams, tmp_path):
    """CPU on every core and memory past the ceiling: others' p95 within 2x, nobody else dies."""
    healthy, hog = teams[:2], teams[2]
    api = Path(f"/home/{healthy[0]}/../{healthy[0]}-api.py").resolve()  # readable by the teams
    api.write_text(API)
    api.chmod(0o644)
    ports = [fleet.free_port() for _ in healthy]
    pairs = zip(healthy, ports, strict=True)
    apis = [login(user, f"exec /usr/bin/python3 {api} {port}") for user, port in pairs]
    hogs = None
    try:
        for port in ports:
            assert wait_for_port(port), f"no API on port {port}"
        pids = [the_api(user) for user in healthy]
        for pid, user in zip(pids, healthy, strict=True):
            assert cgroup_of(pid, "memory") == f"/workshop-{user}"  # the login joined
            assert cgroup_of(pid, "cpu") == f"/workshop-{user}"
        urls = [f"http://127.0.0.1:{port}/predict" for port in ports]
        quiet, died = play(tmp_path, urls, "quiet")
        assert died is None and quiet["failed"] == 0, quiet
        hogs = login(hog, HOG)
        time.sleep(3)  # the hogs at full speed, the memory hog killed at least once
        assert oom_kills(hog) > 0
        loud, died = play(tmp_path, urls, "hog")
        assert died is None, "the game died during the hog"
        assert [the_api(user) for user in healthy] == pids, "a healthy team's API was killed"
        assert loud["failed"] == 0 and loud["results"] >= quiet["results"] * 0.9, loud
        assert loud["p95"] <= 2 * quiet["p95"], (quiet, loud)
        assert oom_kills(hog) > 1  # killed again and again, inside its own team only
    finally:
        api.unlink()
        for process in [*apis, hogs]:
            if process is not None:
                process.kill()
                process.wait()


def test_provisioning_applies_the_limits_and_delete_removes_them(setup, sshd):
    """`users create` gives each team its limits (again: unchanged), a login lands in them."""
    settings, roster = setup
    port, known_hosts, _, _ = sshd
    ex = LocalExecutor()
    provision.create(ex, settings, roster, echo=lambda line: None)
    how = limits.mechanism(ex)
    teams = handout.load(settings.handout_dir)
    users = [team["user"] for team in teams.values()]
    for team in teams.values():
        assert limits.in_place(ex, settings, team["user"], how)
        pam = Path(limits.LIMITS_D) / f"workshop-{team['user']}.conf"
        assert f"hard nproc {settings.limits.tasks_max}" in pam.read_text()
    if how == limits.CGROUP_V1:
        user, password = users[0], next(iter(teams.values()))["password"]
        where = ssh_as(port, known_hosts, user, password, "bash -lc 'cat /proc/self/cgroup'")
        assert f"memory:/workshop-{user}" in where and f"pids:/workshop-{user}" in where
        memory = CGROUPS / "memory" / f"workshop-{user}" / "memory.limit_in_bytes"
        assert int(memory.read_text()) == settings.limits.memory_max_mb << 20
        settings.limits = config.TeamLimits(memory_max_mb=777, tasks_max=99)
        provision.create(ex, settings, roster, echo=lambda line: None)  # changed limits apply
        assert int(memory.read_text()) == 777 << 20
        assert (CGROUPS / "pids" / f"workshop-{user}" / "pids.max").read_text().strip() == "99"
    teardown.delete(ex, settings, None, echo=lambda line: None)
    for user in users:
        assert not limits.in_place(ex, settings, user, how)
        assert not (Path(limits.LIMITS_D) / f"workshop-{user}.conf").exists()
        assert not Path(limits.join_path(settings, user)).exists()
        assert not any((CGROUPS / c / f"workshop-{user}").exists() for c in limits.V1_CONTROLLERS)
