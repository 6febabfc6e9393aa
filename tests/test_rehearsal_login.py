"""A rehearsal bot's login when sshd drops it: a whole room's bots log in at the same instant,
and sshd refuses logins past its MaxStartups (10 by default) until the first ones finish."""

import logging
import socket
import threading
from pathlib import Path

import pytest
from sshd_server import keygen, sshd

from game_server.rehearsal.bots import Bot

pytestmark = [pytest.mark.root, pytest.mark.ssh]


def test_a_bot_logs_in_again_when_sshd_drops_its_login(tmp_path, caplog):
    key = keygen(tmp_path / "key")
    (tmp_path / "keys").write_text((tmp_path / "key.pub").read_text())
    # One login under way at a time; root logs in with the test's key only.
    config = f"MaxStartups 1\nMatch User root\n    AuthorizedKeysFile {tmp_path / 'keys'}\n"
    with sshd(tmp_path, config) as ssh:
        busy = socket.create_connection(("127.0.0.1", ssh.port))  # a login that never ends
        threading.Timer(1.5, busy.close).start()  # ...until it gives up, 1.5 s later
        bot = Bot("root", key, ssh.port, Path(ssh.known_hosts))
        with caplog.at_level(logging.INFO, "game_server.rehearsal.bots"), bot.client() as client:
            _, out, _ = client.exec_command("echo logged in")
            assert out.read().strip() == b"logged in"
    assert "rehearsal bot login dropped user=root attempt=1" in caplog.text


def test_a_wrong_key_is_not_tried_again(tmp_path, caplog):
    key, other = keygen(tmp_path / "key"), keygen(tmp_path / "other")
    (tmp_path / "keys").write_text((tmp_path / "other.pub").read_text())
    config = f"Match User root\n    AuthorizedKeysFile {tmp_path / 'keys'}\n"
    with sshd(tmp_path, config) as ssh:
        bot = Bot("root", key, ssh.port, Path(ssh.known_hosts))
        with (
            caplog.at_level(logging.INFO, "game_server.rehearsal.bots"),
            pytest.raises(Exception, match="Authentication failed"),
        ):
            bot.client()
    assert other.exists() and "login dropped" not in caplog.text
