"""The game loop's metrics in Prometheus' text format, for an existing Prometheus and Grafana.

Why here: the counters are what the loop itself did (rounds sent, scored or voided, each
team's failures by reason and latency), so they live in the loop's process, in a registry
that the `Game` owns (`game.metrics`). `game-server run --metrics-port PORT` serves them on
127.0.0.1 (`MetricsServer`, from a child process); the web pages run in another process
and never see them.

What is exposed is what the public board shows already (docs/SECURITY.md, "Metrics"):
rounds, failures by reason (GAME.md §6: a failure tells nothing about a label), latency,
and the game's state and phase. Never correct or wrong: counted when a round is scored,
they would tell each label before the feedback API does.

Teams are adversaries who choose their names (GAME.md §8a): a series is labelled by the
team's id, a number the game gives; `game_team_info{team_id, team}` maps ids to names for
dashboards, read from the database at a scrape, not from the loop.

A scrape costs the loop's process one rendering every 5 s at most (`CACHE_SECONDS`; about
100 ms for 500 teams on a busy 2-core machine, a few ms for a workshop's 20): the port is
served by a child process (`metrics_child`), which asks this one for the text over a socket
pair, so scrapers, floods and idle connections spend the child's CPU, never the loop's.
Counting costs the loop about 2 µs per result.
"""

import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from game_server.common import supervisor
from game_server.common.logs import first_line
from game_server.common.records import FAILED, ScoredRound
from game_server.play.metrics_child import CACHE_SECONDS, LENGTH
from game_server.play.shedding import Skips
from game_server.scenario.gamefile import Phase
from game_server.storage import schema
from game_server.storage.games import GameRow

log = logging.getLogger(__name__)

# Seconds. The default timeout is 1 s, so the buckets are finer below it.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class RunningGame(Protocol):
    """What the metrics read from the game (the loop's `Game`), never write."""

    @property
    def engine(self) -> sa.Engine: ...  # the game database: the teams' names
    @property
    def game(self) -> GameRow | None: ...  # the game row as the loop last read it
    @property
    def phases(self) -> Sequence[Phase]: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def skips(self) -> Skips: ...  # rounds skipped, by reason


class GameMetrics:
    """The game's metrics: `answered` is a handler of the loop's result event (`Game.results`);
    the loop counts each round's fate with `sent`, then `finished` (scored and stored, or void)."""

    def __init__(self, game: RunningGame):
        """Define the metrics in a registry of this game's own."""
        disable_created_metrics()  # no `..._created` series: they double the text for nothing
        self.registry = CollectorRegistry()
        self.rounds = Counter(
            "game_rounds",
            "Rounds (one applicant sent to every active team) by status: sent, scored, void.",
            ["status"],
            registry=self.registry,
        )
        self.failures = Counter(
            "game_failures",
            "Requests that scored -1, by team id and reason (see GAME.md §2).",
            ["team_id", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "game_team_latency_seconds",
            "Each team's answer time, answers and timeouts only (as the leaderboard counts).",
            ["team_id"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        for status in ("sent", "scored", "void"):
            self.rounds.labels(status)  # every status from zero, so rate() sees the first
        self._latency_of: dict[int, Any] = {}  # team id -> its histogram (a lookup less)
        self.registry.register(_GameState(game))

    def sent(self) -> None:
        """A round's request was stored and is being sent."""
        self.rounds.labels("sent").inc()

    def answered(self, rnd: ScoredRound) -> None:
        """A round's results are in: count its failures and every team's latency."""
        for result in rnd.results:
            score = result.score
            if score.outcome == FAILED:
                self.failures.labels(str(result.team_id), score.reason or "unknown").inc()
            if score.counts_latency:
                self._latency(result.team_id).observe(result.latency_ms / 1000)

    def finished(self, scored: bool) -> None:
        """A round ended: scored (and stored), or not, and then voided."""
        self.rounds.labels("scored" if scored else "void").inc()

    def _latency(self, team_id: int) -> Any:
        """The latency histogram of one team."""
        child = self._latency_of.get(team_id)
        if child is None:
            child = self._latency_of[team_id] = self.latency.labels(str(team_id))
        return child


class _GameState:
    """Read at each scrape: the game's state and phase, rounds in flight, the teams' names."""

    def __init__(self, game: RunningGame):
        """Keep the game: its row is re-read by the loop several times a second."""
        self.game = game

    def collect(self) -> Iterator[Metric]:
        """The metrics of this moment (prometheus_client calls this on every rendering)."""
        row = self.game.game
        state = GaugeMetricFamily("game_state", "1 for the game's current state.", labels=["state"])
        for name in schema.STATES:
            state.add_metric([name], float(row is not None and row.state == name))
        yield state
        if row is not None:
            index = min(int(row.phase_index), len(self.game.phases) - 1)
            phase = self.game.phases[index]
            info = GaugeMetricFamily(
                "game_phase", "The current phase (1).", labels=["index", "name", "kind"]
            )
            info.add_metric([str(index), phase.name, phase.kind], 1.0)
            yield info
        yield GaugeMetricFamily(
            "game_rounds_in_flight", "Rounds sent, not yet scored.", value=self.game.in_flight
        )
        skipped = CounterMetricFamily(
            "game_rounds_skipped",
            "Rounds the loop skipped, whole, by reason (overload, database down or slow).",
            labels=["reason"],
        )
        for reason, count in self.game.skips.counts.items():
            skipped.add_metric([reason], count)
        yield skipped
        yield self._teams()

    def _teams(self) -> GaugeMetricFamily:
        """`game_team_info{team_id, team} 1` for every registered team, from the database.

        Always 1, so that `* on(team_id) group_left(team) game_team_info` names a series.
        """
        teams = GaugeMetricFamily(
            "game_team_info", "Team names by id (always 1).", labels=["team_id", "team"]
        )
        query = sa.select(schema.teams.c.id, schema.teams.c.name)
        try:
            with self.game.engine.connect() as conn:
                rows = conn.execute(query).all()
        except sa.exc.SQLAlchemyError as exc:  # the rest of the metrics still count
            log.warning("metrics: team names not read error=%s", first_line(exc))
            rows = []
        for team_id, name in rows:
            teams.add_metric([str(team_id), name], 1.0)
        return teams


def listen(host: str, port: int) -> socket.socket:
    """A listening IPv4 socket on host:port; OSError (the plain one) when it is taken."""
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class MetricsServer:
    """The metrics on host:port, served by a child process (`metrics_child`); this process
    only renders the text when the child asks (`start`, `close`)."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int):
        """Bind now: a busy port fails here (OSError), before the game starts."""
        self.registry = registry
        self._lock = threading.Lock()
        self._text = b""
        self._rendered_at = -CACHE_SECONDS
        self._listener = listen(host, port)
        self.port: int = self._listener.getsockname()[1]
        self._link, self._child_end = socket.socketpair()
        self.process: subprocess.Popen | None = None

    def start(self) -> "MetricsServer":
        """Start the serving child, and answer its requests for the text from a thread."""
        fds = (self._listener.fileno(), self._child_end.fileno())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "game_server.play.metrics_child", *map(str, fds)],
            pass_fds=fds,
            stdin=subprocess.PIPE,  # closed when this process ends: the child ends too
        )
        self._listener.close()  # the child's now: the port is free once the child ends
        self._child_end.close()
        threading.Thread(target=self._answer, name="metrics", daemon=True).start()
        log.info("metrics served pid=%d port=%d", self.process.pid, self.port)
        return self

    def close(self) -> None:
        """Stop the child (the port is free when this returns)."""
        self._listener.close()
        self._link.close()
        if self.process is not None:
            supervisor.terminate(self.process, timeout=10)
            if self.process.stdin is not None:
                self.process.stdin.close()

    def render(self) -> bytes:
        """The metrics' text, rendered at most once every CACHE_SECONDS."""
        with self._lock:
            if time.monotonic() - self._rendered_at >= CACHE_SECONDS:
                self._text = generate_latest(self.registry)
                self._rendered_at = time.monotonic()
            return self._text

    def _answer(self) -> None:
        """Send the text each time the child asks (one byte), until the link closes."""
        try:
            while self._link.recv(1):
                text = self.render()
                self._link.sendall(LENGTH.pack(len(text)) + text)
        except OSError:
            pass  # closed: the game is stopping
