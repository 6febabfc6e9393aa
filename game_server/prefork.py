"""Several web worker processes on one listening socket (pre-fork), and their supervisor.

One Python process runs its threads one at a time (the GIL): under 50 connections its
p99 is thread scheduling. `game-server web --workers N` forks N worker processes that
accept on the same listening socket (the kernel hands each new connection to one of
them); each builds its own app, engine and cache after the fork and only reads the game
database (the instructor's controls aside). The parent serves nothing: it restarts a
worker that dies (the others keep serving; one that keeps dying is restarted 1, 2, 4 ...
up to 30 s apart), and on SIGTERM or SIGINT, or when its stdin closes if asked to watch
it (`run` started it), stops them all (SIGTERM, SIGKILL after 5 s) before it returns.

No worker outlives the parent, even a parent killed by SIGKILL: each worker holds the
read end of a pipe whose only writer is the parent, and stops when it reads its end.
The parent starts no thread, so forking it is safe.
"""

import contextlib
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable

from game_server.settings import STOP_SECONDS

log = logging.getLogger(__name__)

WORKERS_MAX = 16  # bounded: each worker holds a database pool and its memory
WATCH_SECONDS = 0.25  # how often the parent reaps and restarts workers
RESTART_BACKOFF_MAX = 30.0


class Worker:
    """One slot: its process id (None while not running), when it started, its restarts."""

    def __init__(self, slot: int):
        """An empty slot."""
        self.slot = slot
        self.pid: int | None = None
        self.started_at = 0.0
        self.restarts = 0


class Workers:
    """`count` worker processes, each running `work()` (which serves until SIGTERM)."""

    def __init__(self, count: int, work: Callable[[], None], watch_stdin: bool = False):
        """Settings only (nothing starts until `run()`)."""
        if not 1 <= count <= WORKERS_MAX:
            raise ValueError(f"workers must be between 1 and {WORKERS_MAX}, not {count}")
        self.work = work
        self.watch_stdin = watch_stdin
        self.slots = [Worker(i) for i in range(count)]
        self.stopping = False
        self._lifeline_r, self._lifeline_w = os.pipe()

    def run(self) -> None:
        """Start every worker, supervise them until told to stop, then stop them all."""
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for worker in self.slots:
                self._fork(worker)
            while not self.stopping:
                self._wait()
                self._reap(restart=not self.stopping)
        finally:
            self.stopping = True
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def pids(self) -> list[int]:
        """The process ids of the running workers."""
        return [w.pid for w in self.slots if w.pid is not None]

    def _stop(self, _signum: int, _frame: object) -> None:
        """SIGTERM or SIGINT: leave the supervising loop (at its next turn)."""
        self.stopping = True

    def _wait(self) -> None:
        """Sleep one turn; with `watch_stdin`, wake up and stop when stdin ends."""
        if not self.watch_stdin:
            time.sleep(WATCH_SECONDS)
            return
        readable, _, _ = select.select([sys.stdin.fileno()], [], [], WATCH_SECONDS)
        if readable and not os.read(sys.stdin.fileno(), 4096):
            log.info("web supervisor stdin closed pid=%d; stopping", os.getpid())
            self.stopping = True

    def _fork(self, worker: Worker) -> None:
        """Start `worker`'s process; in the child, serve and never return."""
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                os.close(self._lifeline_w)
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                threading.Thread(
                    target=_stop_when_parent_ends, args=(self._lifeline_r,), daemon=True
                ).start()
                self.work()
                code = 0
            except BaseException:
                log.exception("web worker failed pid=%d", os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        worker.pid, worker.started_at = pid, time.monotonic()
        log.info("web worker started pid=%d slot=%d", pid, worker.slot)

    def _reap(self, restart: bool) -> None:
        """Collect the workers that ended; restart them (with a backoff) if `restart`."""
        for worker in self.slots:
            if worker.pid is not None:
                done, status = os.waitpid(worker.pid, os.WNOHANG)
                if done:
                    self._ended(worker, status, restart)
            elif restart and self._due(worker):
                self._fork(worker)

    def _ended(self, worker: Worker, status: int, restart: bool) -> None:
        """One log line for a worker that ended; the slot is free again."""
        pid, code = worker.pid, _exit_code(status)
        worker.pid = None
        if not restart:
            log.info("web worker stopped pid=%d exit=%s", pid, code)
            return
        ran = time.monotonic() - worker.started_at
        worker.restarts = worker.restarts + 1 if ran < RESTART_BACKOFF_MAX else 0
        log.error("web worker died pid=%d exit=%s slot=%d; restarting it", pid, code, worker.slot)

    def _due(self, worker: Worker) -> bool:
        """Whether a dead worker may be restarted now (1, 2, 4 ... 30 s after it started)."""
        if worker.restarts == 0:
            return True
        wait = min(2.0 ** (worker.restarts - 1), RESTART_BACKOFF_MAX)
        return time.monotonic() - worker.started_at >= wait

    def _stop_all(self) -> None:
        """SIGTERM every worker, SIGKILL those still running after STOP_SECONDS; reap all."""
        for pid in self.pids():
            _signal(pid, signal.SIGTERM)
        os.close(self._lifeline_w)  # and a worker that missed the signal reads the end
        deadline = time.monotonic() + STOP_SECONDS
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
            self._reap(restart=False)
        for worker in self.slots:
            if worker.pid is not None:
                _signal(worker.pid, signal.SIGKILL)
                self._ended(worker, os.waitpid(worker.pid, 0)[1], restart=False)
        os.close(self._lifeline_r)


def _signal(pid: int, sig: int) -> None:
    """Send `sig` to `pid` unless it has already ended."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _exit_code(status: int) -> int:
    """A wait status as `subprocess` shows it: the exit code, or minus the signal."""
    return os.waitstatus_to_exitcode(status)


def _stop_when_parent_ends(lifeline: int) -> None:
    """In a worker: wait until the parent's end of the pipe closes, then stop (SIGTERM)."""
    while os.read(lifeline, 4096):
        pass
    os.kill(os.getpid(), signal.SIGTERM)
