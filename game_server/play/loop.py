"""The one object that owns a running game: state, schedule, rounds and their persistence.

`Game.run()` is the game loop. It follows the game row in the database (control actions
are written there by the CLI or the admin page, see `storage.control`), starts rounds
open-loop at the phase's rate, sends each round to every active team through the
`Customer`, and stores every result through one database thread (`writer.DbWriter`) so
the event loop never blocks on the database.

Crash safety: a round's request row is committed as `sent` before the round is sent; when
every team's result is in, results, totals and status `scored` are written in one
transaction. On start, requests still `sent` (a crash mid-round) become `void`.

A game may run as N shards (`storage.shards`, `game-server run --shard I/N`): each loop
sends to its own teams only, on the shared phase clock and the shared schedule
(`schedule`); without `--shard` it is shard 1/1. A shard's restart voids its own rounds
in flight only, and restarts the clock only when no other shard is alive.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import sqlalchemy as sa

from game_server.play import teams
from game_server.play.customer import Customer, Target
from game_server.play.lobby import Prober
from game_server.play.metrics import GameMetrics
from game_server.play.schedule import SeqPlan, rounds_due
from game_server.play.window import RECENT_WINDOW, RecentWindows
from game_server.play.writer import DbWriter, first_line
from game_server.scenario.gamefile import GameFile, Phase
from game_server.scenario.stream import Scenario
from game_server.storage import control, games, reveal, shards, writes
from game_server.storage.clock import PhaseClock
from game_server.storage.database import prepare_game
from game_server.storage.shards import WHOLE, Shard, acquire_lease, release_lease
from game_server.storage.writes import RequestRow, ScoredRound

log = logging.getLogger(__name__)

POLL_SECONDS = 0.3  # how often the loop reads the game row (control actions take effect)
HEARTBEAT_SECONDS = 1.0  # lease heartbeat and phase-time checkpoint
SNAPSHOT_SECONDS = 1.0  # recent-window rows for the leaderboard
HISTORY_SAMPLES = 150  # points-history samples in a whole game (bounded table)
MAX_IN_FLIGHT = 500  # rounds in flight at once; beyond, rounds are skipped (logged)
MAX_CATCH_UP_SECONDS = 1.0  # a loop later than this skips the missed rounds (logged)


class Game:
    """A running game: the loop, its schedule, its customer and its database thread."""

    def __init__(
        self,
        engine: sa.Engine,
        game_file: GameFile,
        *,
        scenario: Scenario | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
        recent_window: int = RECENT_WINDOW,
        poll_seconds: float = POLL_SECONDS,
        shard: Shard = WHOLE,
    ):
        """Set up (nothing runs until `run()`)."""
        self.engine = engine
        self.game_file = game_file
        self.settings = game_file.settings
        self.phases = game_file.phases
        self.scenario = scenario or Scenario(game_file)
        self.max_in_flight = max_in_flight
        self.poll_seconds = poll_seconds
        self.owner = games.make_owner()
        self.shard = shard
        self.plan = SeqPlan(self.phases)
        self.writer = DbWriter(engine, shard.index)
        self.history_seconds = max(5.0, game_file.duration / HISTORY_SAMPLES)
        self.recent = RecentWindows(recent_window)
        self.game: dict[str, Any] = {}  # the game row as last read
        self.targets: list[Target] = []
        self.key = ""
        self.in_flight = 0
        self.skipped = 0
        self._rounds: set[asyncio.Task[Any]] = set()
        self._stop: asyncio.Event | None = None
        self._customer: Customer | None = None
        self._last_warning = 0.0
        self.metrics = GameMetrics(self)  # rounds, failures, latency: `run --metrics-port`

    def stop(self) -> None:
        """Ask the loop to stop (safe from a signal handler in the loop's thread)."""
        if self._stop is not None:
            self._stop.set()

    async def run(self, started: Callable[[], None] | None = None, start: bool = False) -> None:
        """Run the game until `stop()`: lease, recovery, then the loop's tasks.

        `started` is called once the game is ready (the CLI starts the web app then);
        `start` starts a game that is in the lobby.
        """
        self._stop = asyncio.Event()
        prepare_game(self.engine, self.game_file)
        with self.engine.connect() as conn:  # every shard draws with the game's own secret
            self.scenario = self.scenario.keyed(games.read_stream_secret(conn))
        acquire_lease(self.engine, self.owner, self.shard)
        self.writer.start()
        try:
            await self.writer.call(shards.recover, self.engine, self.shard)
            await self.writer.call(self._load)
            if start and self.game["state"] == "lobby":
                actor = control.default_actor("run --start")
                self.game = await self.writer.call(control.apply, self.engine, "start", actor)
            if started is not None:
                started()
            log.info(
                "game loop started owner=%s shard=%s state=%s phase=%s teams=%d",
                self.owner,
                self.shard,
                self.game["state"],
                self.game["phase_index"],
                len(self.targets),
            )
            async with Customer(
                self.settings.timeout, self.settings.max_body_bytes, self.settings.allowed_hosts
            ) as customer:
                self._customer = customer
                await self._run_tasks(self._stop)
        finally:
            with contextlib.suppress(Exception):
                await self.writer.call(release_lease, self.engine, self.owner, self.shard)
            await self.writer.close()
            log.info("game loop stopped owner=%s skipped_rounds=%d", self.owner, self.skipped)

    async def _run_tasks(self, stop_event: asyncio.Event) -> None:
        """The loop's tasks until a stop (or one of them fails); then the rounds in flight."""
        assert self._customer is not None  # run() opened it
        prober = Prober(self._customer, self.writer)  # who is ready, in the lobby and paused
        tasks = [
            asyncio.create_task(self._poll(), name="poll"),
            asyncio.create_task(self._schedule(), name="schedule"),
            asyncio.create_task(self._snapshots(), name="snapshots"),
            asyncio.create_task(prober.run(lambda: self.game, lambda: self.targets), name="probe"),
        ]
        stop = asyncio.create_task(stop_event.wait())
        await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception():
                log.error(
                    "game loop task failed task=%s", task.get_name(), exc_info=task.exception()
                )
        await asyncio.gather(*tasks, return_exceptions=True)
        stop.cancel()
        if self._rounds:  # rounds end within the timeout; let them be stored
            await asyncio.wait(self._rounds, timeout=self.settings.timeout + 5)
        await self._write_snapshot()

    # --- runs on the database thread ----------------------------------------------------

    def _load(self) -> None:
        """Read the game row and the shard's active teams."""
        with self.engine.connect() as conn:
            self.game = dict(games.game_row(conn))
            self.key = self.game["key"]
            self.targets = self._targets(conn)

    def _targets(self, conn: sa.Connection) -> list[Target]:
        """The customer's view of the shard's active teams."""
        return [
            Target(t["id"], t["url"], t["protocol"], t["model"])
            for t in teams.active_teams(conn)
            if self.shard.owns(t["id"])
        ]

    def _heartbeat(self) -> tuple[dict[str, Any], list[Target], bool]:
        """Heartbeat and checkpoint the phase time; the game row and teams. False: lease lost."""
        with self.engine.begin() as conn:
            held = shards.heartbeat(conn, self.owner, self.shard, time.time())
            row = dict(games.game_row(conn))
            targets = self._targets(conn)
        return row, targets, held

    # --- the loop's tasks ---------------------------------------------------------------

    def _follow(self, row: dict[str, Any]) -> None:
        """Take a freshly read game row; log state and phase changes."""
        old, self.game = self.game, row
        if not old:
            return
        if old["state"] != row["state"]:
            log.info("game state changed from=%s to=%s", old["state"], row["state"])
        if old["phase_index"] != row["phase_index"] or (
            old["state"] == "lobby" and row["state"] == "running"
        ):
            p = self.phases[min(row["phase_index"], len(self.phases) - 1)]
            log.info(
                "phase started index=%d name=%s kind=%s duration=%gs rate=%g burst=%d",
                row["phase_index"],
                p.name,
                p.kind,
                p.duration,
                p.rate,
                p.burst,
            )
        if old["frozen"] != row["frozen"]:
            log.info("leaderboard %s", "frozen" if row["frozen"] else "unfrozen")

    async def _poll(self) -> None:
        """Follow the game row; heartbeat, checkpoint and re-read the teams every second."""
        last_beat = 0.0
        while True:
            try:
                now = time.monotonic()
                if now - last_beat >= HEARTBEAT_SECONDS:
                    last_beat = now
                    row, targets, held = await self.writer.call(self._heartbeat)
                    if not held:
                        log.error("game loop lost its lease owner=%s; stopping", self.owner)
                        self.stop()
                        return
                    if targets != self.targets:
                        log.info("active teams changed count=%d", len(targets))
                        self.targets = targets
                    allowed = await self.writer.transaction(teams.allowed_hosts)
                    if self._customer is not None and self._customer.use_allow_list(allowed):
                        log.info("allow-list changed allowed_hosts=%s", ",".join(allowed))
                else:
                    row = dict(await self.writer.transaction(games.game_row))
                self._follow(row)
            except Exception as exc:  # a database hiccup must not end the game
                log.error("reading the game row failed error=%s", first_line(exc))
                await asyncio.sleep(1.0)
            await asyncio.sleep(self.poll_seconds)

    async def _schedule(self) -> None:
        """Start rounds open-loop: `burst` rounds every burst/rate seconds while running."""
        while True:
            try:
                await self._schedule_rounds()
            except Exception as exc:  # a database hiccup must not end the game
                log.error("scheduler failed error=%s; restarting it", first_line(exc))
                await asyncio.sleep(1.0)

    async def _schedule_rounds(self) -> None:
        """The scheduler's loop (see `_schedule`).

        It follows the phase clock, not its own: by phase time `t` the rounds of every
        burst due by then have started (`rounds_due`), so a phase sends exactly
        rate x duration rounds whatever the loop's hiccups, a pause stops the schedule
        with the clock, and a restart goes on where the phase was.
        """
        started: tuple[int, int] | None = None  # (phase index, rounds started in it)
        last_sample = int(time.time() // self.history_seconds)
        while True:
            g = self.game
            if g["state"] != "running":
                await asyncio.sleep(0.05)
                continue
            idx = g["phase_index"]
            phase = self.phases[idx]
            elapsed = PhaseClock.of(g).at(time.time())
            if elapsed >= phase.duration:
                await self._phase_over(idx, phase)
                continue
            if (sample := int(time.time() // self.history_seconds)) != last_sample:
                last_sample = sample  # the same instants in every shard: sampled once
                at = sample * self.history_seconds
                self._spawn(self.writer.transaction(writes.sample_history, at))
            if started is None or started[0] != idx:  # after a restart, go on from there
                span = self.plan.span(idx)
                done = await self.writer.transaction(shards.phase_progress, self.shard, *span)
                started = (idx, done)
            behind = rounds_due(phase, elapsed) - started[1]
            if behind <= 0:
                next_burst = started[1] / phase.rate  # phase time the next burst is due
                await asyncio.sleep(min(max(next_burst - elapsed, 0.001), 0.05))
                continue
            skip = behind - phase.burst  # more than this burst: the loop fell behind
            if skip > MAX_CATCH_UP_SECONDS * phase.rate:  # stalled: skip them, don't flood
                self.skipped += skip
                self._warn("loop late: %d rounds skipped, skipped=%d", skip, self.skipped)
            else:
                skip = 0
            for k in range(started[1] + skip, started[1] + behind):
                self._start_round(idx, k)
            started = (idx, started[1] + behind)

    async def _phase_over(self, idx: int, phase: Phase) -> None:
        """The phase ran its duration: advance (or finish) by the clock, unless overtaken.

        Every shard does it at the same moment; one update lands, and the others follow
        the row it wrote at once (the next phase's first burst is due at its start).
        """
        row = await self.writer.call(control.advance_by_clock, self.engine, idx, phase.duration)
        if row is None:
            row = dict(await self.writer.transaction(games.game_row))
            if row["phase_index"] == idx and row["state"] == "running":
                await asyncio.sleep(0.01)  # not over yet by the stored clock
        self._follow(row)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine as a tracked task."""
        task = asyncio.create_task(coro)
        self._rounds.add(task)
        task.add_done_callback(self._rounds.discard)

    def _warn(self, message: str, *args: object) -> None:
        """A warning at most every 5 s (a full schedule must not flood the log)."""
        if time.monotonic() - self._last_warning > 5:
            self._last_warning = time.monotonic()
            log.warning(message, *args)

    def _start_round(self, phase_index: int, k: int) -> None:
        """Start one round as its own task (never waiting for earlier rounds)."""
        if not self.targets:
            self._warn("no active teams: rounds are not sent")
            return
        if self.in_flight >= self.max_in_flight:
            self.skipped += 1
            self._warn("round skipped in_flight=%d skipped=%d", self.in_flight, self.skipped)
            return
        seq = self.plan.seq(phase_index, k)
        self.in_flight += 1
        self._spawn(self._round(seq, phase_index, list(self.targets)))

    def _request(self, seq: int, phase_index: int, request_id: str) -> RequestRow:
        """Draw the round's applicant: the request row as stored before it is sent."""
        a = self.scenario.draw(phase_index, seq)
        oracle = self.scenario.oracle_expected_points(a)
        baseline = self.scenario.baseline_expected_points(a)
        now = time.time()
        return {
            "seq": seq,
            "request_id": request_id,
            "phase_index": phase_index,
            "features": a.features,
            "oddities": list(a.oddities),
            "label": int(a.label),
            "p_default": a.p_default,
            "oracle_points": oracle,
            "baseline_points": baseline,
            "sent_at": now,
            "label_visible_at": now + self.settings.label_delay,
        }

    async def _round(self, seq: int, phase_index: int, targets: list[Target]) -> None:
        """One round: commit the request, ask every team, store the scored results."""
        request_id = f"{self.key}-{seq:07d}"
        try:
            row = self._request(seq, phase_index, request_id)
            await self.writer.sent(row)
            self.metrics.sent()
        except Exception:
            log.exception("round not sent request_id=%s", request_id)
            self.in_flight -= 1
            return
        try:
            if self._customer is None:
                raise RuntimeError("no customer: the game is not running")
            results = await self._customer.ask(targets, request_id, row["features"], row["label"])
            self.recent.remember(results)
            await self.writer.scored(
                ScoredRound(seq, phase_index, row["oracle_points"], row["baseline_points"], results)
            )
            self.metrics.scored(results)
        except Exception as exc:
            log.error("round not scored request_id=%s error=%s; voiding it", request_id, exc)
            with contextlib.suppress(Exception):
                await self.writer.transaction(writes.void_requests, [seq], self.shard.index)
                self.metrics.voided()
        finally:
            self.in_flight -= 1

    async def _write_snapshot(self) -> None:
        """Write the recent-window rows of the teams with new results."""
        rows = self.recent.changed_rows(time.time())
        if rows:
            await self.writer.transaction(writes.store_recent, rows)

    async def _snapshots(self) -> None:
        """About once a second, the recent-window rows and the labels that became visible."""
        while True:
            await asyncio.sleep(SNAPSHOT_SECONDS)
            await self._write_snapshot()
            try:
                await self.writer.transaction(reveal.reveal_labels, time.time())
            except Exception as exc:  # a database hiccup must not end the game
                log.error("revealing labels failed error=%s", first_line(exc))
