"""The one object that owns a running game: state, schedule, rounds and their persistence.

`Game.run()` is the game loop. It follows the game row in the database (control actions
are written there by the CLI or the admin page, see `control.py`), starts rounds open-loop
at the phase's rate, sends each round to every active team through the `Customer`, and
stores every result through one database thread (`DbWriter`) so the event loop never
blocks on the database.

Crash safety: a round's request row is committed as `sent` before the round is sent; when
every team's result is in, results, totals and status `scored` are written in one
transaction. On start, requests still `sent` (a crash mid-round) become `void`.
"""

import asyncio
import collections
import contextlib
import dataclasses
import logging
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from game_server.play import teams
from game_server.play.customer import Customer, Target
from game_server.scenario.gamefile import GameFile
from game_server.scenario.stream import Scenario
from game_server.storage import control
from game_server.storage import database as storage
from game_server.storage.database import games

log = logging.getLogger(__name__)

POLL_SECONDS = 0.3  # how often the loop reads the game row (control actions take effect)
HEARTBEAT_SECONDS = 1.0  # lease heartbeat and phase-time checkpoint
LEASE_SECONDS = 10.0  # a loop silent this long is dead; its game may be taken over
SNAPSHOT_SECONDS = 1.0  # recent-window rows for the leaderboard
RECENT_WINDOW = 100  # results per team in the recent window
UP_WINDOW = 5  # a team is up when one of its last 5 answers was valid
HISTORY_SAMPLES = 150  # points-history samples in a whole game (bounded table)
MAX_IN_FLIGHT = 500  # rounds in flight at once; beyond, rounds are skipped (logged)
MAX_CATCH_UP_SECONDS = 1.0  # a loop later than this skips the missed rounds (logged)
DB_RETRIES = (0.2, 0.5, 1.0)


class GameBusy(RuntimeError):
    """Another game loop holds this game's lease."""


class StoreFailed(RuntimeError):
    """A write batch failed after its retries."""


class DbWriter:
    """The game loop's one database thread: runs calls and batches round writes.

    Rounds that arrive while a transaction is running are written together in the next
    one (`sent` requests first, then scored rounds), so batches grow with the load and
    stay single at low load, adding no waiting time.
    """

    def __init__(self, engine: sa.Engine):
        """Create the writer; `start()` it inside the event loop."""
        self.engine = engine
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
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

    def _submit(self, kind: str, payload) -> asyncio.Future:
        """Queue one item; the future resolves when it is committed."""
        fut = self._loop.create_future()
        self._queue.put((kind, payload, fut))
        return fut

    async def call(self, fn: Callable, *args):
        """Run `fn(*args)` on the database thread; its return value."""
        return await self._submit("call", (fn, args))

    async def sent(self, request_row: dict) -> None:
        """Commit one request as `sent` (before it is sent)."""
        await self._submit("sent", request_row)

    async def scored(self, round_: tuple) -> None:
        """Commit one scored round: `(seq, phase_index, oracle, baseline, results)`."""
        await self._submit("scored", round_)

    def _resolve(self, fut: asyncio.Future, result=None, error: BaseException | None = None):
        """Hand a result (or error) back to the event loop."""

        def done():
            if fut.done():
                return
            if error is None:
                fut.set_result(result)
            else:
                fut.set_exception(error)

        self._loop.call_soon_threadsafe(done)

    def _run(self) -> None:
        """The thread: take everything queued, write it, repeat until closed."""
        while True:
            item = self._queue.get()
            batch, closing = [item], item is None
            while not closing:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                closing = item is None
            batch = [i for i in batch if i is not None]
            rounds = [i for i in batch if i[0] in ("sent", "scored")]
            if rounds:
                self._write_rounds(rounds)
            for _kind, (fn, args), fut in (i for i in batch if i[0] == "call"):
                try:
                    self._resolve(fut, fn(*args))
                except BaseException as exc:
                    self._resolve(fut, error=exc)
            if closing:
                return

    def _write_rounds(self, items: list) -> None:
        """One transaction for the batch's new requests and scored rounds, with retries."""
        sent = [p for k, p, _ in items if k == "sent"]
        scored = [p for k, p, _ in items if k == "scored"]
        start = time.perf_counter()
        for attempt, pause in enumerate((*DB_RETRIES, None)):
            try:
                with self.engine.begin() as conn:
                    if sent:
                        storage.insert_requests(conn, sent)
                    n_results = storage.store_rounds(conn, scored) if scored else 0
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
                    for *_, fut in items:
                        self._resolve(fut, error=StoreFailed(first_line(exc)))
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
        for *_, fut in items:
            self._resolve(fut)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when the message is empty)."""
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _round1(value: float | None) -> float | None:
    """`value` to 0.1 (milliseconds are shown to 0.1 ms), None stays None."""
    return None if value is None else round(value, 1)


def make_owner() -> str:
    """This process's lease name: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _owner_alive(owner: str, heartbeat: float | None, now: float) -> bool:
    """Whether the loop named `owner` may still be running."""
    if heartbeat is None or now - heartbeat > LEASE_SECONDS:
        return False
    host, _, rest = owner.partition(":")
    if host == socket.gethostname():  # on this machine a dead pid settles it at once
        try:
            os.kill(int(rest.partition(":")[0]), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError):
            return True
    return True


def acquire_lease(engine: sa.Engine, owner: str) -> None:
    """Become the game's one loop; GameBusy while another live loop holds it."""
    now = time.time()
    with engine.begin() as conn:
        g = storage.game_row(conn)
        current = g["loop_owner"]
        if current and current != owner and _owner_alive(current, g["loop_heartbeat"], now):
            age = now - g["loop_heartbeat"]
            raise GameBusy(
                f"another game loop is running this game (owner={current}, last heartbeat "
                f"{age:.1f} s ago); stop it first"
            )
        same = games.c.loop_owner.is_(None) if current is None else games.c.loop_owner == current
        done = conn.execute(
            games.update().where(same).values(loop_owner=owner, loop_heartbeat=now)
        ).rowcount
    if not done:
        raise GameBusy("another game loop took this game at the same moment; try again")


def release_lease(engine: sa.Engine, owner: str) -> None:
    """Stop being the game's loop: fold the running time in and leave the lease free."""
    now = time.time()
    with engine.begin() as conn:
        conn.execute(
            games.update()
            .where(games.c.loop_owner == owner, games.c.phase_resumed_at.is_not(None))
            .values(
                phase_elapsed=games.c.phase_elapsed + (now - games.c.phase_resumed_at),
                phase_resumed_at=None,
            )
        )
        conn.execute(
            games.update()
            .where(games.c.loop_owner == owner)
            .values(loop_owner=None, loop_heartbeat=None)
        )


def recover(engine: sa.Engine) -> int:
    """After a (crash and) restart: void rounds left `sent`, restart the running clock."""
    with engine.begin() as conn:
        voided = storage.void_requests(conn)
        # The time since the last checkpoint (at most a heartbeat) is not counted: the
        # game was not running then.
        conn.execute(
            games.update().where(games.c.state == "running").values(phase_resumed_at=time.time())
        )
    if voided:
        log.warning("voided requests left unscored by a stopped game loop count=%d", voided)
    return voided


def prepare_game(engine: sa.Engine, game_file: GameFile) -> None:
    """Store the game file's settings and phases; refuse another file once started."""
    storage.init_db(engine)
    phase_rows = [
        {
            "name": p.name,
            "kind": p.kind,
            "duration": p.duration,
            "rate": p.rate,
            "burst": p.burst,
            "description": p.description,
        }
        for p in game_file.phases
    ]
    settings = json_safe(dataclasses.asdict(game_file.settings))
    with engine.begin() as conn:
        g = storage.game_row(conn)
        if g["state"] != "lobby":
            stored = [{k: v for k, v in p.items() if k != "idx"} for p in storage.phase_list(conn)]
            if stored != phase_rows:
                raise GameBusy(
                    f"the game was started with another game file ({g['game_file']}); "
                    "use that file, or a new database for a new game"
                )
        storage.configure_game(conn, game_file.settings.name, game_file.path, settings, phase_rows)


def rounds_due(phase, elapsed: float) -> int:
    """Rounds that have started by phase time `elapsed`: whole bursts, the first at 0.

    At most rate x duration in all, so every phase sends what `game check` announces.
    """
    total = round(phase.rate * phase.duration)
    bursts = int(elapsed * phase.rate / phase.burst) + 1
    return min(total, bursts * phase.burst)


def json_safe(value):
    """`value` with tuples as lists, for a JSON column."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


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
        self.owner = make_owner()
        self.writer = DbWriter(engine)
        self.history_seconds = max(5.0, game_file.duration / HISTORY_SAMPLES)
        self.recent: dict[int, collections.deque] = collections.defaultdict(
            lambda: collections.deque(maxlen=recent_window)
        )
        self._dirty: set[int] = set()
        self.game: dict | None = None  # the game row as last read
        self.targets: list[Target] = []
        self.key = ""
        self.next_seq = 1
        self.in_flight = 0
        self.skipped = 0
        self._rounds: set[asyncio.Task] = set()
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
                tasks = [
                    asyncio.create_task(self._poll(), name="poll"),
                    asyncio.create_task(self._schedule(), name="schedule"),
                    asyncio.create_task(self._snapshots(), name="snapshots"),
                ]
                stop = asyncio.create_task(self._stop.wait())
                await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    if task.done() and not task.cancelled() and task.exception():
                        log.error(
                            "game loop task failed task=%s",
                            task.get_name(),
                            exc_info=task.exception(),
                        )
                await asyncio.gather(*tasks, return_exceptions=True)
                stop.cancel()
                if self._rounds:  # rounds end within the timeout; let them be stored
                    await asyncio.wait(self._rounds, timeout=self.settings.timeout + 5)
                await self._write_snapshot()
        finally:
            with contextlib.suppress(Exception):
                await self.writer.call(release_lease, self.engine, self.owner)
            await self.writer.close()
            log.info("game loop stopped owner=%s skipped_rounds=%d", self.owner, self.skipped)

    # --- runs on the database thread ----------------------------------------------------

    def _load(self) -> None:
        """Read the game row, the next seq and the active teams."""
        with self.engine.connect() as conn:
            self.game = dict(storage.game_row(conn))
            self.key = self.game["key"]
            self.next_seq = storage.next_seq(conn)
            self.targets = self._targets(conn)

    @staticmethod
    def _targets(conn: sa.Connection) -> list[Target]:
        """The customer's view of the active teams."""
        return [
            Target(t["id"], t["url"], t["protocol"], t["model"]) for t in teams.active_teams(conn)
        ]

    def _heartbeat(self, read_teams: bool) -> tuple[dict, list[Target] | None, bool]:
        """Heartbeat and checkpoint the phase time; the game row (and teams). False: lease lost."""
        now = time.time()
        with self.engine.begin() as conn:
            held = conn.execute(
                games.update().where(games.c.loop_owner == self.owner).values(loop_heartbeat=now)
            ).rowcount
            conn.execute(
                games.update()
                .where(
                    games.c.loop_owner == self.owner,
                    games.c.state == "running",
                    games.c.phase_resumed_at.is_not(None),
                )
                .values(
                    phase_elapsed=games.c.phase_elapsed + (now - games.c.phase_resumed_at),
                    phase_resumed_at=now,
                )
            )
            row = dict(storage.game_row(conn))
            targets = self._targets(conn) if read_teams else None
        return row, targets, bool(held)

    def _read(self) -> dict:
        """The game row."""
        with self.engine.connect() as conn:
            return dict(storage.game_row(conn))

    # --- the loop's tasks ---------------------------------------------------------------

    def _follow(self, row: dict) -> None:
        """Take a freshly read game row; log state and phase changes."""
        old, self.game = self.game, row
        if old is None:
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
                    row, targets, held = await self.writer.call(self._heartbeat, True)
                    if not held:
                        log.error("game loop lost its lease owner=%s; stopping", self.owner)
                        self.stop()
                        return
                    if targets != self.targets:
                        log.info("active teams changed count=%d", len(targets))
                        self.targets = targets
                else:
                    row = await self.writer.call(self._read)
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
            elapsed = storage.phase_elapsed(g, time.time())
            if elapsed >= phase.duration:
                row = await self.writer.call(
                    control.advance_by_clock, self.engine, idx, phase.duration
                )
                if row is not None:
                    self._follow(row)
                else:
                    await asyncio.sleep(self.poll_seconds)
                continue
            if time.monotonic() - last_sample >= self.history_seconds:
                last_sample = time.monotonic()
                self._spawn(self.writer.call(self._sample))
            if started is None or started[0] != idx:
                started = (idx, await self.writer.call(self._rounds_in_phase, idx))
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

    def _rounds_in_phase(self, phase_index: int) -> int:
        """Rounds already sent in a phase (after a restart, the schedule goes on from there)."""
        with self.engine.connect() as conn:
            return storage.rounds_in_phase(conn, phase_index)

    def _sample(self) -> None:
        """One points-history sample (database thread)."""
        with self.engine.begin() as conn:
            storage.sample_history(conn, time.time())

    def _spawn(self, coro) -> None:
        """Run a coroutine as a tracked task."""
        task = asyncio.create_task(coro)
        self._rounds.add(task)
        task.add_done_callback(self._rounds.discard)

    def _warn(self, message: str, *args) -> None:
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

    async def _round(self, seq: int, phase_index: int, targets: list[Target]) -> None:
        """One round: commit the request, ask every team, store the scored results."""
        request_id = f"{self.key}-{seq:07d}"
        try:
            a = self.scenario.draw(phase_index, seq)
            oracle = self.scenario.oracle_expected_points(a)
            baseline = self.scenario.baseline_expected_points(a)
            now = time.time()
            await self.writer.sent(
                {
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
            )
        except Exception:
            log.exception("round not sent request_id=%s", request_id)
            self.in_flight -= 1
            return
        try:
            results = await self._customer.ask(targets, request_id, a.features, a.label)
            self._remember(results)
            await self.writer.scored((seq, phase_index, oracle, baseline, results))
        except Exception as exc:
            log.error("round not scored request_id=%s error=%s; voiding it", request_id, exc)
            with contextlib.suppress(Exception):
                await self.writer.call(self._void, seq)
        finally:
            self.in_flight -= 1

    def _void(self, seq: int) -> None:
        """Void one round that could not be scored (database thread)."""
        with self.engine.begin() as conn:
            storage.void_requests(conn, [seq])

    def _remember(self, results) -> None:
        """Add results to the teams' recent windows (kept in memory, bounded)."""
        for r in results:
            latency = r.latency_ms if r.score.counts_latency else None
            self.recent[r.team_id].append((r.score.outcome, latency))
            self._dirty.add(r.team_id)

    def recent_row(self, team_id: int, now: float) -> dict:
        """The recent-window snapshot of one team."""
        window = self.recent[team_id]
        outcomes = [o for o, _ in window]
        answered = sum(o != "failed" for o in outcomes)
        latencies = sorted(lat for _, lat in window if lat is not None)
        last = outcomes[-UP_WINDOW:]
        return {
            "team_id": team_id,
            "window": len(window),
            "answered": answered,
            "accuracy": outcomes.count("correct") / answered if answered else None,
            "latency_p50": _round1(storage.percentile(latencies, 0.5)),
            "latency_p95": _round1(storage.percentile(latencies, 0.95)),
            "up": any(o != "failed" for o in last) if last else None,
            "updated_at": now,
        }

    async def _write_snapshot(self) -> None:
        """Write the recent-window rows of the teams with new results."""
        if not self._dirty:
            return
        now = time.time()
        rows = [self.recent_row(t, now) for t in sorted(self._dirty)]
        self._dirty.clear()

        def write():
            with self.engine.begin() as conn:
                storage.store_recent(conn, rows)

        await self.writer.call(write)

    async def _snapshots(self) -> None:
        """About once a second, the recent-window rows."""
        while True:
            await asyncio.sleep(SNAPSHOT_SECONDS)
            await self._write_snapshot()
