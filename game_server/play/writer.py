"""The game loop's one database thread (`DbWriter`): the event loop never waits on the database.

Every database call of the loop goes through it. Rounds whose writes arrive while a
transaction runs go into the next one together (new requests first, then scored rounds),
so batches grow with the load and stay single at low load, adding no waiting time. A
failed batch is retried `DB_RETRIES` times, then its rounds' futures fail (`StoreFailed`).

A database that cannot be reached (PostgreSQL restarting, a locked or read-only SQLite
file) is a pause, not an end (GAME.md §9): the writer notes since when it is down
(`down_since`, one line in the log, and one when it is back), fails a batch at once
instead of retrying it while down (the loop then sends no new rounds), and the first
write that works again ends the outage. A request that waited more than `STALE_SECONDS`
to be written (a locked SQLite file holds the thread for its busy timeout) is not
written: it is not sent either, rather than sent late with a flood of others.
"""

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from game_server.common.logs import first_line
from game_server.common.records import RequestRow, ScoredRound
from game_server.storage import writes

log = logging.getLogger(__name__)

DB_RETRIES = (0.2, 0.5, 1.0)  # pauses (s) before the retries of a failed batch
STALE_SECONDS = 2.0  # a request not written this long after it was drawn is not written

T = TypeVar("T")


class StoreFailed(RuntimeError):
    """A write batch failed after its retries (`unreachable`: the database was down)."""

    unreachable = False


def unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached or written (not a bad query)."""
    if isinstance(exc, StoreFailed):
        return exc.unreachable
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)


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


class DbWriter:
    """The game loop's one database thread: runs calls and batches round writes."""

    def __init__(self, engine: sa.Engine, shard: int = 1):
        """Create the writer of shard `shard` (I of I/N); `start()` it inside the event loop."""
        self.engine = engine
        self.shard = shard
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()  # None: close
        self._thread = threading.Thread(target=self._run, name="game-db", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.down_since: float | None = None  # wall time the database was found unreachable

    def _note(self, error: BaseException | None) -> None:
        """Follow the database's health from each write's outcome (on the database thread)."""
        if error is None:
            if self.down_since is not None:
                log.warning("database back after %.1fs", time.time() - self.down_since)
                self.down_since = None
        elif self.down_since is None and unreachable(error):
            self.down_since = time.time()
            log.error(
                "database down error=%s; no rounds are sent until it is back", first_line(error)
            )

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
            rounds = self._fresh([i for i in batch if isinstance(i, Sent | Scored)])
            if rounds:
                self._write_rounds(rounds)
            for item in batch:
                if isinstance(item, Call):
                    try:
                        self._resolve(item.future, item.fn(*item.args))
                        self._note(None)
                    except BaseException as exc:
                        self._note(exc)
                        self._resolve(item.future, error=exc)
            if closing:
                return

    def _fresh(self, items: list[Sent | Scored]) -> list[Sent | Scored]:
        """The items to write: the requests that waited too long fail (not written)."""
        now, fresh = time.time(), []
        for item in items:
            if isinstance(item, Sent) and now - item.row["sent_at"] > STALE_SECONDS:
                late = StoreFailed(f"not written within {STALE_SECONDS:g}s: the database is slow")
                late.unreachable = True
                self._resolve(item.future, error=late)
            else:
                fresh.append(item)
        return fresh

    def _write_rounds(self, items: list[Sent | Scored]) -> None:
        """One transaction for the batch's new requests and scored rounds, with retries."""
        sent = [i.row for i in items if isinstance(i, Sent)]
        scored = [i.round for i in items if isinstance(i, Scored)]
        start = time.perf_counter()
        retries = DB_RETRIES if self.down_since is None else ()  # down: fail at once
        for attempt, pause in enumerate((*retries, None)):
            try:
                with self.engine.begin() as conn:
                    writes.insert_requests(conn, sent, self.shard)
                    n_results = writes.store_rounds(conn, scored, shard=self.shard) if scored else 0
                break
            except Exception as exc:
                if pause is None:
                    if not unreachable(exc):  # an outage is one line (`_note`), not one a batch
                        log.error(
                            "db batch failed sent=%d scored=%d attempts=%d error=%s",
                            len(sent),
                            len(scored),
                            attempt + 1,
                            first_line(exc),
                        )
                    self._note(exc)
                    failed = StoreFailed(first_line(exc))
                    failed.unreachable = unreachable(exc)
                    for item in items:
                        self._resolve(item.future, error=failed)
                    return
                log.warning("db batch retry attempt=%d error=%s", attempt + 1, exc)
                time.sleep(pause)
        self._note(None)
        log.debug(
            "db batch sent=%d scored=%d results=%d ms=%.1f",
            len(sent),
            len(scored),
            n_results,
            (time.perf_counter() - start) * 1000,
        )
        for item in items:
            self._resolve(item.future)
