"""The one object that owns a running game: state, schedule, rounds and their persistence.

`Game.run()` is the game loop. It follows the game row in the database (control actions
are written there by the CLI or the admin page, see `storage.control`), starts rounds
open-loop at the phase's rate, sends each round to every active team through the
`Customer`, and stores every result through one database thread (`DbWriter`) so
the event loop never blocks on the database.

Crash safety: a round's request row is committed as `sent` before the round is sent; when
every team's result is in, results, totals and status `scored` are written in one
transaction. On start, requests still `sent` (a crash mid-round) become `void`.
"""

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from game_server.play import teams
from game_server.play.customer import Customer, Target
from game_server.play.scoring import CORRECT, FAILED, Result, percentile
from game_server.scenario.gamefile import GameFile, Phase
from game_server.scenario.stream import Scenario
from game_server.storage import control, games, writes
from game_server.storage.clock import PhaseClock
from game_server.storage.database import prepare_game
from game_server.storage.games import acquire_lease, release_lease
from game_server.storage.writes import RequestRow, ScoredRound

log = logging.getLogger(__name__)

POLL_SECONDS = 0.3  # how often the loop reads the game row (control actions take effect)
HEARTBEAT_SECONDS = 1.0  # lease heartbeat and phase-time checkpoint
SNAPSHOT_SECONDS = 1.0  # recent-window rows for the leaderboard
HISTORY_SAMPLES = 150  # points-history samples in a whole game (bounded table)
MAX_IN_FLIGHT = 500  # rounds in flight at once; beyond, rounds are skipped (logged)
MAX_CATCH_UP_SECONDS = 1.0  # a loop later than this skips the missed rounds (logged)

# --- the database thread -----------------------------------------------------------------

DB_RETRIES = (0.2, 0.5, 1.0)  # pauses (s) before the retries of a failed batch

T = TypeVar("T")


class StoreFailed(RuntimeError):
    """A write batch failed after its retries."""


# The queue's items: the class says what to do, the future says when it is done.


@dataclass(frozen=True, slots=True)
class Sent:
    """Commit one request as `sent`, before it is sent."""

    row: RequestRow
    future: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class Scored:
    """Commit one scored round: its results, the totals and the status `scored`."""

    round: ScoredRound
    future: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class Call:
    """Run `fn(*args)` on the database thread; the future gets its return value."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]


Item = Sent | Scored | Call


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when the message is empty)."""
    return (str(exc).splitlines() or [type(exc).__name__])[0]


class DbWriter:
    """The game loop's one database thread: runs calls and batches round writes."""

    def __init__(self, engine: sa.Engine):
        """Create the writer; `start()` it inside the event loop."""
        self.engine = engine
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()  # None: close
        self._thread = threading.Thread(target=self._run, name="game-db", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start the thread; results are handed back to the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._thread.start()

    async def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        self._queue.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the writer was started in."""
        if self._loop is None:
            raise RuntimeError("DbWriter used before start()")
        return self._loop

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the database thread; its return value."""
        future: asyncio.Future[T] = self._event_loop().create_future()
        self._queue.put(Call(fn, args, future))
        return await future

    async def transaction(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` in one transaction on the database thread; its return value."""
        return await self.call(self._in_transaction, fn, args)

    def _in_transaction(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """`fn(conn, *args)` in a transaction (on the database thread)."""
        with self.engine.begin() as conn:
            return fn(conn, *args)

    async def sent(self, row: RequestRow) -> None:
        """Commit one request as `sent` (before it is sent)."""
        future: asyncio.Future[None] = self._event_loop().create_future()
        self._queue.put(Sent(row, future))
        await future

    async def scored(self, rnd: ScoredRound) -> None:
        """Commit one scored round."""
        future: asyncio.Future[None] = self._event_loop().create_future()
        self._queue.put(Scored(rnd, future))
        await future

    def _resolve(
        self, fut: asyncio.Future[Any], result: Any = None, error: BaseException | None = None
    ) -> None:
        """Hand a result (or error) back to the event loop."""

        def done() -> None:
            if fut.done():
                return
            if error is None:
                fut.set_result(result)
            else:
                fut.set_exception(error)

        self._event_loop().call_soon_threadsafe(done)

    def _take(self) -> tuple[list[Item], bool]:
        """Everything queued (waiting for at least one item), and whether to close after."""
        item = self._queue.get()
        batch: list[Item] = []
        while item is not None:
            batch.append(item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _run(self) -> None:
        """The thread: take everything queued, write it, repeat until closed."""
        while True:
            batch, closing = self._take()
            rounds = [i for i in batch if isinstance(i, Sent | Scored)]
            if rounds:
                self._write_rounds(rounds)
            for item in batch:
                if isinstance(item, Call):
                    try:
                        self._resolve(item.future, item.fn(*item.args))
                    except BaseException as exc:
                        self._resolve(item.future, error=exc)
            if closing:
                return

    def _write_rounds(self, items: list[Sent | Scored]) -> None:
        """One transaction for the batch's new requests and scored rounds, with retries."""
        sent = [i.row for i in items if isinstance(i, Sent)]
        scored = [i.round for i in items if isinstance(i, Scored)]
        start = time.perf_counter()
        for attempt, pause in enumerate((*DB_RETRIES, None)):
            try:
                with self.engine.begin() as conn:
                    writes.insert_requests(conn, sent)
                    n_results = writes.store_rounds(conn, scored) if scored else 0
                break
            except Exception as exc:
                if pause is None:
                    log.error(
                        "db batch failed sent=%d scored=%d attempts=%d error=%s",
                        len(sent),
                        len(scored),
                        attempt + 1,
                        first_line(exc),
                    )
                    for item in items:
                        self._resolve(item.future, error=StoreFailed(first_line(exc)))
                    return
                log.warning("db batch retry attempt=%d error=%s", attempt + 1, exc)
                time.sleep(pause)
        log.debug(
            "db batch sent=%d scored=%d results=%d ms=%.1f",
            len(sent),
            len(scored),
            n_results,
            (time.perf_counter() - start) * 1000,
        )
        for item in items:
            self._resolve(item.future)


# --- the recent window -------------------------------------------------------------------

RECENT_WINDOW = 100  # results per team in the recent window
UP_WINDOW = 5  # a team is up when one of its last 5 answers was valid


@dataclass(frozen=True, slots=True)
class Seen:
    """What the window keeps of one result."""

    outcome: str
    latency_ms: float | None  # None when it says nothing of the API's speed


def _round1(value: float | None) -> float | None:
    """`value` to 0.1 (milliseconds are shown to 0.1 ms), None stays None."""
    return None if value is None else round(value, 1)


class RecentWindows:
    """The last `size` results of every team (bounded), and which teams have new ones."""

    def __init__(self, size: int = RECENT_WINDOW):
        """Empty windows of `size` results."""
        self._windows: defaultdict[int, deque[Seen]] = defaultdict(lambda: deque(maxlen=size))
        self._dirty: set[int] = set()

    def remember(self, results: Iterable[Result]) -> None:
        """Add results to their teams' windows."""
        for r in results:
            latency = r.latency_ms if r.score.counts_latency else None
            self._windows[r.team_id].append(Seen(r.score.outcome, latency))
            self._dirty.add(r.team_id)

    def row(self, team_id: int, now: float) -> dict[str, Any]:
        """The recent-window snapshot of one team (a `team_recent` row)."""
        window = self._windows[team_id]
        outcomes = [s.outcome for s in window]
        answered = sum(o != FAILED for o in outcomes)
        latencies = sorted(s.latency_ms for s in window if s.latency_ms is not None)
        last = outcomes[-UP_WINDOW:]
        return {
            "team_id": team_id,
            "window": len(window),
            "answered": answered,
            "accuracy": outcomes.count(CORRECT) / answered if answered else None,
            "latency_p50": _round1(percentile(latencies, 0.5)),
            "latency_p95": _round1(percentile(latencies, 0.95)),
            "up": any(o != FAILED for o in last) if last else None,
            "updated_at": now,
        }

    def changed_rows(self, now: float) -> list[dict[str, Any]]:
        """The snapshot rows of the teams with new results since the last call."""
        rows = [self.row(t, now) for t in sorted(self._dirty)]
        self._dirty.clear()
        return rows


def recover(engine: sa.Engine) -> int:
    """After a (crash and) restart: void rounds left `sent`, restart the running clock."""
    with engine.begin() as conn:
        voided = writes.void_requests(conn)
        games.restart_clock(conn, time.time())
    if voided:
        log.warning("voided requests left unscored by a stopped game loop count=%d", voided)
    return voided


def rounds_due(phase: Phase, elapsed: float) -> int:
    """Rounds that have started by phase time `elapsed`: whole bursts, the first at 0.

    At most rate x duration in all, so every phase sends what `game check` announces.
    """
    total = round(phase.rate * phase.duration)
    bursts = int(elapsed * phase.rate / phase.burst) + 1
    return min(total, bursts * phase.burst)


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
        self.writer = DbWriter(engine)
        self.history_seconds = max(5.0, game_file.duration / HISTORY_SAMPLES)
        self.recent = RecentWindows(recent_window)
        self.game: dict[str, Any] = {}  # the game row as last read
        self.targets: list[Target] = []
        self.key = ""
        self.next_seq = 1
        self.in_flight = 0
        self.skipped = 0
        self._rounds: set[asyncio.Task[Any]] = set()
        self._stop: asyncio.Event | None = None
        self._customer: Customer | None = None
        self._last_warning = 0.0

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
        acquire_lease(self.engine, self.owner)
        self.writer.start()
        try:
            await self.writer.call(recover, self.engine)
            await self.writer.call(self._load)
            if start and self.game["state"] == "lobby":
                actor = control.default_actor("run --start")
                self.game = await self.writer.call(control.apply, self.engine, "start", actor)
            if started is not None:
                started()
            log.info(
                "game loop started owner=%s state=%s phase=%s next_seq=%d",
                self.owner,
                self.game["state"],
                self.game["phase_index"],
                self.next_seq,
            )
            async with Customer(
                self.settings.timeout, self.settings.max_body_bytes, self.settings.allowed_hosts
            ) as customer:
                self._customer = customer
                await self._run_tasks(self._stop)
        finally:
            with contextlib.suppress(Exception):
                await self.writer.call(release_lease, self.engine, self.owner)
            await self.writer.close()
            log.info("game loop stopped owner=%s skipped_rounds=%d", self.owner, self.skipped)

    async def _run_tasks(self, stop_event: asyncio.Event) -> None:
        """The loop's tasks until a stop (or one of them fails); then the rounds in flight."""
        tasks = [
            asyncio.create_task(self._poll(), name="poll"),
            asyncio.create_task(self._schedule(), name="schedule"),
            asyncio.create_task(self._snapshots(), name="snapshots"),
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
        """Read the game row, the next seq and the active teams."""
        with self.engine.connect() as conn:
            self.game = dict(games.game_row(conn))
            self.key = self.game["key"]
            self.next_seq = writes.next_seq(conn)
            self.targets = self._targets(conn)

    @staticmethod
    def _targets(conn: sa.Connection) -> list[Target]:
        """The customer's view of the active teams."""
        return [
            Target(t["id"], t["url"], t["protocol"], t["model"]) for t in teams.active_teams(conn)
        ]

    def _heartbeat(self) -> tuple[dict[str, Any], list[Target], bool]:
        """Heartbeat and checkpoint the phase time; the game row and teams. False: lease lost."""
        with self.engine.begin() as conn:
            held = games.heartbeat(conn, self.owner, time.time())
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
        last_sample = time.monotonic()
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
            if time.monotonic() - last_sample >= self.history_seconds:
                last_sample = time.monotonic()
                self._spawn(self.writer.transaction(writes.sample_history, time.time()))
            if started is None or started[0] != idx:  # after a restart, go on from there
                started = (idx, await self.writer.transaction(writes.rounds_in_phase, idx))
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
            for _ in range(behind - skip):
                self._start_round(idx)
            started = (idx, started[1] + behind)

    async def _phase_over(self, idx: int, phase: Phase) -> None:
        """The phase ran its duration: advance (or finish) by the clock, unless overtaken."""
        row = await self.writer.call(control.advance_by_clock, self.engine, idx, phase.duration)
        if row is not None:
            self._follow(row)
        else:
            await asyncio.sleep(self.poll_seconds)

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

    def _start_round(self, phase_index: int) -> None:
        """Start one round as its own task (never waiting for earlier rounds)."""
        if not self.targets:
            self._warn("no active teams: rounds are not sent")
            return
        if self.in_flight >= self.max_in_flight:
            self.skipped += 1
            self._warn("round skipped in_flight=%d skipped=%d", self.in_flight, self.skipped)
            return
        seq, self.next_seq = self.next_seq, self.next_seq + 1
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
        except Exception as exc:
            log.error("round not scored request_id=%s error=%s; voiding it", request_id, exc)
            with contextlib.suppress(Exception):
                await self.writer.transaction(writes.void_requests, [seq])
        finally:
            self.in_flight -= 1

    async def _write_snapshot(self) -> None:
        """Write the recent-window rows of the teams with new results."""
        rows = self.recent.changed_rows(time.time())
        if rows:
            await self.writer.transaction(writes.store_recent, rows)

    async def _snapshots(self) -> None:
        """About once a second, the recent-window rows."""
        while True:
            await asyncio.sleep(SNAPSHOT_SECONDS)
            await self._write_snapshot()
