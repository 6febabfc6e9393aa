"""Logging predictions to the database without slowing the answers down.

A request must not wait for the database (a slow or unreachable database would turn
into timeouts, and timeouts score -1). So the request only puts its record on a
bounded queue and answers; one background thread takes records off the queue and
inserts them in batches. When the queue is full the record is dropped with a warning:
losing a log line is better than losing the answer.
"""

import logging
import queue
import threading
import time

import sqlalchemy as sa
import sqlalchemy.exc

from modules import database

log = logging.getLogger(__name__)

LINGER_SECONDS = 0.2  # how long a batch waits for more records before it is saved


class BackgroundWriter:
    """A thread that saves prediction records in batches; `submit` never blocks."""

    def __init__(self, engine: sa.Engine, max_queue: int = 10_000, batch_size: int = 500):
        """Start the writer thread for `engine` (it creates the tables if missing)."""
        self.engine = engine
        self.batch_size = batch_size
        self.queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.dropped = 0
        self.written = 0
        self._last_warning = 0.0
        self._stop = threading.Event()
        self._tables_ready = False  # the thread creates them: a database that is down at
        # start must not stop the API from answering
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self._thread.start()

    def submit(self, record: dict) -> bool:
        """Queue one record for saving; False (and a warning) when the queue is full."""
        try:
            self.queue.put_nowait(record)
            return True
        except queue.Full:
            self.dropped += 1
            now = time.monotonic()
            if now - self._last_warning > 1.0:  # one warning a second, not one per request
                self._last_warning = now
                log.warning("database queue full: record dropped dropped_total=%d", self.dropped)
            return False

    def _run(self) -> None:
        """Take records off the queue and save them in batches until stopped and drained."""
        while not (self._stop.is_set() and self.queue.empty()):
            batch = self._next_batch()
            if not batch:
                continue
            started = time.perf_counter()
            try:
                if not self._tables_ready:
                    database.create_tables(self.engine)
                    self._tables_ready = True
                database.save_predictions(self.engine, batch)
            except sqlalchemy.exc.OperationalError:
                # The database is unreachable: trying row by row would only take longer.
                self.dropped += len(batch)
                log.exception("database write failed rows=%d: dropped", len(batch))
            except Exception:
                self._save_one_by_one(batch)  # one bad record must not lose the others
            else:
                self.written += len(batch)
                log.debug(
                    "database write rows=%d ms=%.1f",
                    len(batch),
                    (time.perf_counter() - started) * 1000,
                )

    def _save_one_by_one(self, batch: list[dict]) -> None:
        """Save a failed batch record by record; drop (and log once) only those that fail."""
        failed, first_error = 0, None
        for record in batch:
            try:
                database.save_predictions(self.engine, [record])
                self.written += 1
            except Exception as exc:  # the database is down or refused this record
                failed, first_error = failed + 1, first_error or exc
        if failed:
            self.dropped += failed
            log.error(
                "database write failed rows=%d dropped=%d", len(batch), failed, exc_info=first_error
            )

    def _next_batch(self) -> list[dict]:
        """Wait a little for one record, then gather more for up to LINGER_SECONDS."""
        try:
            batch = [self.queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        # A burst's records arrive one by one, milliseconds apart: waiting a moment for the
        # rest makes one transaction of the burst, not one per record (each commit costs).
        deadline = time.monotonic() + LINGER_SECONDS
        while len(batch) < self.batch_size:
            wait = deadline - time.monotonic()
            try:
                batch.append(self.queue.get(timeout=wait) if wait > 0 else self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def close(self, timeout: float = 5.0) -> None:
        """Save what is still queued (waiting at most `timeout` seconds) and stop the thread."""
        self._stop.set()
        self._thread.join(timeout)
