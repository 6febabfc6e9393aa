"""`game-server doctor`: one line per problem with what to do, exit 0 when the server is ready."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from click.testing import CliRunner
from starter_helpers import free_port

from game_server.cli.main import main


def listener() -> socket.socket:
    """A socket listening on a free loopback port (stands in for sshd)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


class Health(BaseHTTPRequestHandler):
    """A team's API that answers GET /health."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def doctor(db: str, *args: str):
    """Run `game-server --db DB doctor ARGS`."""
    return CliRunner().invoke(main, ["--db", db, "doctor", *args])


def test_an_empty_database_and_no_sshd_are_named_with_what_to_do(tmp_path):
    """No game and no SSH server: one line each, with the command that fixes it; exit 1."""
    db = f"sqlite:///{tmp_path / 'game.sqlite'}"
    result = doctor(
        db,
        "--ssh-port",
        str(free_port()),
        "--port",
        str(free_port()),
        "--registry",
        str(tmp_path / "none.json"),
    )
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any("game-server init" in line for line in lines), result.output
    assert any("no SSH server" in line for line in lines), result.output
    assert all(line.startswith("doctor: ") for line in lines)


def test_a_ready_server_and_a_team_whose_api_is_down(tmp_path):
    """Ready but for one team: its user, its .env and its API are each a line; then ready."""
    db = f"sqlite:///{tmp_path / 'game.sqlite'}"
    assert CliRunner().invoke(main, ["--db", db, "init", "--game", "demo"]).exit_code == 0
    ssh, api = listener(), ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    registry = tmp_path / "accounts.json"
    common = ["--ssh-port", str(ssh.getsockname()[1]), "--registry", str(registry)]
    try:
        registry.write_text(json.dumps({"teams": []}))
        ready = doctor(db, *common, "--port", str(free_port()))
        assert ready.exit_code == 0 and "ready" in ready.output, ready.output
        busy = doctor(db, *common, "--port", str(api.server_address[1]))
        assert busy.exit_code == 1 and "is in use" in busy.output
        team = {"name": "Ghost", "user": "team-no-such-user-x", "api_port": free_port()}
        registry.write_text(json.dumps({"teams": [team]}))
        ghost = doctor(db, *common, "--port", str(free_port()))
        assert ghost.exit_code == 1 and "team Ghost: no Linux user" in ghost.output
        team.update(user="root", api_port=api.server_address[1])  # a user that exists
        registry.write_text(json.dumps({"teams": [team]}))
        no_env = doctor(db, *common, "--port", str(free_port()))
        assert "participant_starter/.env" in no_env.output and "/health" not in no_env.output
    finally:
        ssh.close()
        api.shutdown()


def test_the_running_game_on_its_port_is_ready_and_a_finished_game_is_named(tmp_path):
    """The pages' port held by the game itself is "the game is up", exit 0; a finished game
    left in the database is a line that says `game-server new`."""
    from werkzeug.serving import make_server

    from game_server.web.app import create_app

    db = f"sqlite:///{tmp_path / 'game.sqlite'}"
    assert CliRunner().invoke(main, ["--db", db, "init", "--game", "demo"]).exit_code == 0
    ssh = listener()
    registry = tmp_path / "accounts.json"
    registry.write_text(json.dumps({"teams": []}))
    pages = make_server("127.0.0.1", 0, create_app({"DATABASE_URL": db}), threaded=True)
    threading.Thread(target=pages.serve_forever, daemon=True).start()
    common = ["--ssh-port", str(ssh.getsockname()[1]), "--registry", str(registry)]
    try:
        up = doctor(db, *common, "--port", str(pages.server_port))
        assert up.exit_code == 0, up.output
        assert f"the game is up on port {pages.server_port} (lobby)" in up.output
        for action in ("start", "finish"):
            assert CliRunner().invoke(main, ["--db", db, "control", action]).exit_code == 0
        done = doctor(db, *common, "--port", str(free_port()))
        assert done.exit_code == 1 and "`game-server new`" in done.output, done.output
        assert CliRunner().invoke(main, ["--db", db, "new", "--no-export"]).exit_code == 0
        assert doctor(db, *common, "--port", str(free_port())).exit_code == 0
    finally:
        ssh.close()
        pages.shutdown()
