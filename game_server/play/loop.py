"""The one object that owns a running game: state, schedule, rounds and their persistence.

`Game.run()` is the game loop. It follows the game row (control actions are written
there by the CLI or the admin page, `storage.control`), starts rounds open-loop at the
phase's rate, asks every active team through the `Customer` and fires each round's results
(`Game.results`) to the recent window, the database thread (`writer.DbWriter`: the event
loop never blocks on the database) and the metrics.

Crash safety: a round's request row is committed as `sent` before the round is sent, its
results, totals and status `scored` in one transaction; on start, requests still `sent`
(a crash mid-round) become `void`.

Faults bend the game, never end it: the tasks run `supervised` (only a stop ends them),
rounds are skipped whole while the database is down or the loop overloaded (`shedding`).

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

from game_server.common.records import RequestRow, Result, ScoredRound
from game_server.play import teams
from game_server.play.customer import Customer, Target
from game_server.play.events import Event
from game_server.play.lobby import Prober
from game_server.play.metrics import GameMetrics
from game_server.play.rounds import log_changes, request_row
from game_server.play.schedule import SeqPlan, rounds_due
from game_server.play.shedding import DATABASE_DOWN, DATABASE_SLOW, OVERLOAD, Admission, Skips
from game_server.play.supervise import supervised
from game_server.play.window import RECENT_WINDOW, RecentWindows
from game_server.play.writer import DbWriter, unreachable
from game_server.scenario.gamefile import GameFile, Phase
from game_server.scenario.stream import Scenario
from game_server.storage import control, games, reveal, shards, skips, writes
from game_server.storage import teams as registry
from game_server.storage.clock import PhaseClock
from game_server.storage.database import prepare_game
from game_server.storage.shards import WHOLE, Shard, acquire_lease, release_lease

log = logging.getLogger(__name__)

POLL_SECONDS = 0.3  # how often the loop reads the game row (control actions take effect)
HEARTBEAT_SECONDS = 1.0  # lease heartbeat and phase-time checkpoint
SNAPSHOT_SECONDS = 1.0  # recent-window rows for the leaderboard
HISTORY_SAMPLES = 150  # points-history samples in a whole game (bounded table)
MAX_IN_FLIGHT = 2000  # rounds not yet stored; beyond, the database is too slow (skipped)
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
        self.game: games.GameRow | None = None  # the game row as last read
        self.targets: list[Target] = []
        self.key = ""
        self.in_flight = 0
        self.skips = Skips()  # rounds skipped, by reason (`shedding`)
        self.admission = Admission(self.settings.timeout)
        self.stopped_by = ""  # why run() returned: "stop" (a signal, the CLI), or what failed
        self._rounds: set[asyncio.Task[Any]] = set()
        self._unvoided: list[int] = []  # rounds not scored, not yet voided
        self._stop: asyncio.Event | None = None
        self._customer: Customer | None = None
        self._last_warning = 0.0
        self.metrics = GameMetrics(self)  # rounds, failures, latency: `run --metrics-port`
        self.results: Event[ScoredRound] = Event("results")  # a round's results are in; in turn:
        self.results.subscribe(self.recent.remember, self.writer.scored, self.metrics.answered)

    def stop(self, reason: str = "stop") -> None:
        """Ask the loop to stop (safe from a signal handler in the loop's thread).

        `reason`: "stop" for a wanted stop (a signal, the demo); anything else says what
        went wrong, and `game-server run` then exits non-zero (a supervisor restarts it).
        """
        if not self.stopped_by:
            self.stopped_by = reason
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
            self.game = await self.writer.call(self._load)
            if start and self.game.state == "lobby":
                actor = control.default_actor("run --start")
                self.game = await self.writer.call(control.apply, self.engine, "start", actor)
            if started is not None:
                started()
            log.info(
                "game loop started owner=%s shard=%s state=%s phase=%s teams=%d",
                self.owner,
                self.shard,
                self.game.state,
                self.game.phase_index,
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
            log.info(
                "game loop stopped owner=%s by=%s skipped_rounds=%d skipped_by=%s",
                self.owner,
                self.stopped_by or "an error",
                self.skips.total,
                ",".join(f"{k.replace(' ', '_')}:{v}" for k, v in self.skips.counts.items()),
            )

    def tasks(self) -> dict[str, Callable[[], Coroutine[Any, Any, Any]]]:
        """The loop's long-running tasks by name, each run supervised (`supervise`)."""
        assert self._customer is not None  # run() opened it
        prober = Prober(self._customer, self.writer)  # who is ready, in the lobby and paused
        return {
            "poll": self._poll,
            "schedule": self._schedule_rounds,
            "snapshots": self._snapshots,
            "reveal": self._reveal,
            "probe": lambda: prober.run(lambda: self.game, lambda: self.targets),
        }

    async def _run_tasks(self, stop_event: asyncio.Event) -> None:
        """The loop's tasks until a stop; then the rounds in flight."""
        tasks = [
            asyncio.create_task(supervised(name, body), name=name)
            for name, body in self.tasks().items()
        ]
        await stop_event.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._rounds:  # rounds end within the timeout; let them be stored
            await asyncio.wait(self._rounds, timeout=self.settings.timeout + 5)
        with contextlib.suppress(Exception):  # the database may be down at the stop
            await self._write_snapshot()

    # --- runs on the database thread ----------------------------------------------------

    def _load(self) -> games.GameRow:
        """Read the shard's active teams; the game row."""
        with self.engine.connect() as conn:
            game = games.game_row(conn)
            self.key, self.targets = game.key, self._targets(conn)
            for reason, count in skips.of_shard(conn, self.shard.index).items():
                self.skips.counts[reason] = count
        return game

    def _targets(self, conn: sa.Connection) -> list[Target]:
        """The customer's view of the shard's active teams."""
        uids = teams.team_uids(conn)  # the Linux user each team's port must belong to
        return [
            Target(t["id"], t["url"], t["protocol"], t["model"], t["key"], uids.get(t["id"]))
            for t in registry.active_teams(conn)
            if self.shard.owns(t["id"])
        ]

    def _heartbeat(self) -> tuple[games.GameRow, list[Target], bool]:
        """Heartbeat and checkpoint the phase time; the game row and teams. False: lease lost."""
        with self.engine.begin() as conn:
            held = shards.heartbeat(conn, self.owner, self.shard, time.time())
            row = games.game_row(conn)
            targets = self._targets(conn)
        return row, targets, held

    # --- the loop's tasks ---------------------------------------------------------------

    def _follow(self, row: games.GameRow) -> None:
        """Take a freshly read game row; log state and phase changes."""
        old, self.game = self.game, row
        if old:
            log_changes(old, row, self.phases)

    async def _poll(self) -> None:
        """Follow the game row; heartbeat, checkpoint and re-read the teams every second."""
        last_beat = 0.0
        while True:
            now = time.monotonic()
            if now - last_beat >= HEARTBEAT_SECONDS:
                last_beat = now
                row, targets, held = await self.writer.call(self._heartbeat)
                if not held:
                    log.error("game loop lost its lease owner=%s; stopping", self.owner)
                    self.stop("lost its lease")
                    return
                if targets != self.targets:
                    log.info("active teams changed count=%d", len(targets))
                    self.targets = targets
                allowed = await self.writer.transaction(teams.allowed_hosts)
                if self._customer is not None and self._customer.use_allow_list(allowed):
                    log.info("allow-list changed allowed_hosts=%s", ",".join(allowed))
            else:
                row = await self.writer.transaction(games.game_row)
            self._follow(row)
            await asyncio.sleep(self.poll_seconds)

    async def _schedule_rounds(self) -> None:
        """Start rounds open-loop: `burst` rounds every burst/rate seconds while running.

        It follows the phase clock, not its own: by phase time `t` the rounds of every
        burst due by then have started (`rounds_due`), so a phase sends exactly
        rate x duration rounds whatever the loop's hiccups, a pause stops the schedule
        with the clock, and a restart goes on where the phase was.
        """
        started: tuple[int, int] | None = None  # (phase index, rounds started in it)
        last_sample = int(time.time() // self.history_seconds)
        while True:
            g = self.game
            if g is None or g.state != "running":
                await asyncio.sleep(0.05)
                continue
            idx = g.phase_index
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
                self._skip(OVERLOAD, skip, "loop late")
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
            row = await self.writer.transaction(games.game_row)
            if row.phase_index == idx and row.state == "running":
                await asyncio.sleep(0.01)  # not over yet by the stored clock
        self._follow(row)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine as a tracked task."""
        task = asyncio.create_task(coro)
        self._rounds.add(task)
        task.add_done_callback(self._rounds.discard)

    def _skip(self, reason: str, rounds: int, why: str) -> None:
        """Count rounds skipped (whole, for every team of the shard); a warning now and then."""
        self.skips.add(reason, rounds)
        a, n = self.admission, self.skips.counts[reason]
        what = f"in_flight={self.in_flight} asking={a.asking} limit={a.limit:.0f}"
        self._warn("rounds skipped reason=%s why=%s skipped=%d %s", reason, why, n, what)

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
        if self.writer.down_since is not None:
            self._skip(DATABASE_DOWN, 1, "the request row cannot be written")
            return
        if self.in_flight >= self.max_in_flight:
            self._skip(DATABASE_SLOW, 1, "too many rounds waiting to be stored")
            return
        if not self.admission.admit(len(self.targets)):
            self._skip(OVERLOAD, 1, "too many requests in flight")
            return
        seq = self.plan.seq(phase_index, k)
        self.in_flight += 1
        self._spawn(self._round(seq, phase_index, list(self.targets)))

    async def _round(self, seq: int, phase_index: int, targets: list[Target]) -> None:
        """One round: commit the request, ask every team, fire its results (`self.results`)."""
        request_id = f"{self.key}-{seq:07d}"
        try:
            row = request_row(self.scenario, self.settings, phase_index, seq, request_id)
            await self.writer.sent(row)
            self.metrics.sent()
        except Exception as exc:
            self.in_flight -= 1
            self.admission.done(len(targets))
            if unreachable(exc):  # the outage is logged by the writer
                self._skip(DATABASE_DOWN, 1, "the request row could not be written")
            else:
                log.exception("round not sent request_id=%s", request_id)
            return
        handled = False  # every handler of the results did its part (the writer stored them)
        try:
            results = await self._ask(targets, request_id, row)
            refs = row["oracle_points"], row["baseline_points"]
            handled = await self.results.fire(ScoredRound(seq, phase_index, *refs, results))
        except Exception as exc:  # a handler's error is logged by the event (handled: False)
            log.error("round not scored request_id=%s error=%s; voiding it", request_id, exc)
        finally:
            self.in_flight -= 1
        if not handled:
            self._unvoided.append(seq)  # with the next snapshot: now, or once the database is back
        self.metrics.finished(scored=handled)

    async def _ask(self, targets: list[Target], request_id: str, row: RequestRow) -> list[Result]:
        """Ask every team of the round; its requests leave the admission's count when done."""
        if self._customer is None:
            raise RuntimeError("no customer: the game is not running")
        results: list[Result] = []
        try:
            results = await self._customer.ask(targets, request_id, row["features"], row["label"])
        finally:
            self.admission.done(len(targets), results)
        return results

    async def _write_snapshot(self) -> None:
        """Write the skip counts, void the rounds not scored, and write the recent-window rows
        of the teams with new results."""
        counts, last_at = dict(self.skips.counts), dict(self.skips.last_at)
        await self.writer.transaction(skips.record, self.shard.index, counts, last_at)
        if seqs := self._unvoided[:]:  # rounds may be added meanwhile
            await self.writer.transaction(writes.void_requests, seqs, self.shard.index)
            del self._unvoided[: len(seqs)]
        if rows := self.recent.changed_rows(time.time()):
            await self.writer.transaction(writes.store_recent, rows)

    async def _snapshots(self) -> None:
        """About once a second, the recent-window rows of the teams with new results."""
        while True:
            await asyncio.sleep(SNAPSHOT_SECONDS)
            await self._write_snapshot()

    async def _reveal(self) -> None:
        """About once a second, the labels that became visible."""
        while True:
            await asyncio.sleep(SNAPSHOT_SECONDS)
            await self.writer.transaction(reveal.reveal_labels, time.time())
