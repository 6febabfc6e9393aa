"""A team's API port that another user holds is scored `wrong_owner` (issue 21).

A team on the game's server (it has a Linux user) is answered only by a listener of its own
user: /proc/net/tcp's uid column names the owner. The root test runs a real API as another
Linux user (`nobody`) on the team's port.
"""

import asyncio
import os
import pwd
import socket
import subprocess
import sys
import time

import pytest
from engine_helpers import fast_game
from starter_helpers import free_port

from game_server.play import listeners, teams
from game_server.play.customer import Customer, Target
from game_server.storage import database
from game_server.storage import teams as registry
from game_server.storage.teams import TeamError

# A team API (native protocol) that always answers 1, on 127.0.0.1:PORT.
API = r"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"pred": 1}'
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def api_as(user: str, port: int) -> subprocess.Popen:
    """The API above run as Linux user `user`, listening once this returns."""
    entry = pwd.getpwnam(user)
    argv = [
        "setpriv",
        f"--reuid={entry.pw_uid}",
        f"--regid={entry.pw_gid}",
        "--clear-groups",
        sys.executable,
        "-c",
        API,
        str(port),
    ]
    proc = subprocess.Popen(argv, cwd="/", env={})
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the API as {user} did not listen on {port}")


def ask(targets: list[Target]) -> list[str | None]:
    """Each target's failure reason for one request (None: it was scored)."""

    async def run():
        async with Customer(timeout=5.0) as customer:
            return await customer.ask(targets, "r-1", {"age": 30}, 1)

    return [r.score.reason for r in asyncio.run(run())]


@pytest.mark.root
def test_a_listener_of_another_user_is_scored_wrong_owner(monkeypatch):
    fresh = listeners.Listeners(ttl=0, background=False)  # not a snapshot of an earlier test
    monkeypatch.setattr(listeners, "LISTENERS", fresh)
    port = free_port()
    nobody, daemon = pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("daemon").pw_uid
    api = api_as("nobody", port)
    url = f"http://127.0.0.1:{port}/predict"
    try:
        reasons = ask(
            [
                Target(1, url, owner=daemon),  # daemon's team: nobody squats its port
                Target(2, url, owner=nobody),  # nobody's own API
                Target(3, url),  # no Linux user (a registered URL): not checked
                Target(4, f"http://localhost:{port}/predict", owner=daemon),
            ]
        )
    finally:
        api.kill()
        api.wait()
    assert reasons == ["wrong_owner", None, None, "wrong_owner"]


def test_the_owner_of_a_listening_socket_is_read_from_proc():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port, me = sock.getsockname()[1], os.getuid()
    try:
        check = listeners.Listeners(ttl=0, background=False)
        assert check.problem("127.0.0.1", port, me) is None
        assert check.problem("localhost", port, me) is None
        assert check.problem("127.0.0.1", port, me + 4242) == "wrong_owner"
        assert check.problem("127.0.0.1", port, None) is None  # a team without a user
        assert check.problem("10.1.2.3", port, me + 4242) is None  # not on this server
    finally:
        sock.close()
    assert check.problem("127.0.0.1", port, me + 4242) is None  # nothing listens: connect_error


def test_the_kernels_choice_decides_which_listener_counts():
    v4 = listeners._address("0100007F")  # 127.0.0.1 as /proc/net/tcp spells it on x86
    assert str(v4) == "127.0.0.1"
    any4, any6 = listeners._address("00000000"), listeners._address("0" * 32)
    team, other = 1001, 1002
    # the team on 127.0.0.1, another user on an IPv6-only wildcard: the team gets it
    assert listeners._takers([(v4, team), (any6, other)], v4) == {team}
    # the team on the IPv4 wildcard, the other on IPv6's: still the team
    assert listeners._takers([(any4, team), (any6, other)], v4) == {team}
    # only the other's wildcard: it would take the connection
    assert listeners._takers([(any6, other)], v4) == {other}
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
        "   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001 0 1\n"
        "   1: 0100007F:1F41 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1002 0 2\n"
    )
    assert listeners.parse_table(table) == [(v4, 8000, 1001)]  # only the listening one


def test_a_teams_linux_user_is_recorded_at_registration(db_url):
    engine = database.make_engine(db_url)
    database.prepare_game(engine, fast_game())
    teams.add_team(engine, "Red", "http://127.0.0.1:9001/predict", user="nobody")
    teams.add_team(engine, "Blue", "http://127.0.0.1:9002/predict")
    with pytest.raises(TeamError, match="bad Linux user name"):
        teams.add_team(engine, "Green", "http://127.0.0.1:9003/predict", user="-rf")
    with engine.connect() as conn:
        red = next(t["id"] for t in registry.active_teams(conn) if t["name"] == "Red")
        assert teams.team_uids(conn) == {red: pwd.getpwnam("nobody").pw_uid}
