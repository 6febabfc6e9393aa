"""`game-server run`'s web server beside a customer that holds many sockets."""

import resource
import socket

import requests

from game_server.processes import webserver
from game_server.storage import database


def test_the_web_server_answers_when_file_descriptors_go_past_1024(sqlite_url):
    """At a big game's peak the customer holds >1,024 sockets; select() would crash there."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    filler = []
    try:
        while len(filler) < 1100:  # every new descriptor from here on is above 1,024
            filler.append(socket.socket())
        assert filler[-1].fileno() > 1024
        database.init_db(database.make_engine(sqlite_url))
        server = webserver.start_web(sqlite_url, "127.0.0.1", 0)
        try:
            base = f"http://127.0.0.1:{server.effective_port}"
            for _ in range(3):  # the listening socket and each connection are above 1,024
                assert requests.get(f"{base}/api/health", timeout=5).status_code == 200
        finally:
            server.close()
    finally:
        for s in filler:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
