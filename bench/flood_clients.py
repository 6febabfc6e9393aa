"""The flood of bench/flood_bench.py: client threads requesting every public endpoint.

As fast as they can, expensive variants included (monitoring with any window, team
results of 500 rows, feedback with wrong tokens, the Plotly bundle), while idle and slow
connections are held open to the web and metrics ports.
"""

import collections
import os
import random
import socket
import threading
import time

import requests

MAX_REQUESTS_PER_THREAD = 200_000  # a bound besides the game's length


HELD = {"web idle": 300, "web slow": 100, "metrics idle": 100}  # connections held open


def flood_paths(names: list[str]) -> list[str]:
    """Every public GET endpoint (pages, API, static files), expensive variants included."""
    team = names[0]
    paths = [
        "/",
        f"/teams/{team}",
        "/monitoring",
        "/admin",
        "/api/health",
        "/api/leaderboard",
        "/api/history",
        f"/api/teams/{team}",
        f"/api/teams/{team}/results?limit=500",
        "/api/feedback?after=0&limit=1000",
        "/api/openapi.json",
        "/static/js/leaderboard.js",
        "/static/vendor/plotly.min.js",
        "/api/admin/control-log",
        "/slides/",
    ]
    for phase in ("all", "0"):
        paths += [f"/api/monitoring?phase={phase}&last={n}" for n in (200, 1000, 5000)]
    return paths


class Flood:
    """Client threads requesting every public endpoint until stopped; status counts."""

    def __init__(self, base: str, names: list[str], threads: int, nice: int = 0, metrics: str = ""):
        self.base = base
        self.nice = nice
        self.paths = [base + p for p in flood_paths(names)] + ([metrics] if metrics else [])
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.seconds = 0.0
        self.threads = [threading.Thread(target=self._client, args=(i,)) for i in range(threads)]

    def __enter__(self) -> "Flood":
        """Start the client threads."""
        self.started = time.monotonic()
        if self.threads:
            self.held = hold_connections(self.base, self.paths[-1])
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop and join the client threads."""
        self.stop.set()
        for t in self.threads:
            t.join()
        self.seconds = time.monotonic() - self.started
        for sock in self.held:
            sock.close()

    def _client(self, seed: int) -> None:
        """One client: keep-alive, no waiting, a random endpoint each time."""
        if self.nice:  # a thread's own priority (Linux): the flood's client, not the pages
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        rng = random.Random(seed)
        session = requests.Session()
        local: collections.Counter[str] = collections.Counter()
        for _ in range(MAX_REQUESTS_PER_THREAD):
            if self.stop.is_set():
                break
            url = rng.choice(self.paths)
            if rng.random() < 0.2:  # any window: the attack of issue 15
                url = f"{self.base}/api/monitoring?last={rng.randint(10, 5000)}"
            headers = {"Authorization": "Bearer wrong"} if "feedback" in url else {}
            try:
                status = str(session.get(url, headers=headers, timeout=10).status_code)
            except requests.RequestException:
                status = "error"
            local[status] += 1
        with self.lock:
            self.counts.update(local)


def hold_connections(base: str, metrics: str) -> list[socket.socket]:
    """Idle connections and slow ones (a head never finished) to the web and metrics ports
    (issue 21: 110 idle ones silenced the pages, 9 the metrics), held during the flood."""
    web, scrape = (int(u.split(":")[2].split("/")[0]) for u in (base, metrics))
    held = []
    for (what, count), port in zip(HELD.items(), (web, web, scrape), strict=True):
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if "slow" in what:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            held.append(sock)
    return held
