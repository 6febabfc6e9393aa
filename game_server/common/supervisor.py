"""One way to start, restart and stop the game's child processes (issue 25): the forked
web workers (`Fork`), `run`'s `game-server web` and the demo's bots (`Command`).

- **Start.** A child's stdin is a pipe whose only writer is its supervisor; the child ends
  itself when it closes (`end_with_stdin`): a supervisor killed by SIGKILL leaves no
  child. A `Command` with `group` leads a process group and is signalled as one.
- **Restart, one backoff** (`restart_delay`): at once after a child that ran
  `BACKOFF_MAX` s, else 1, 2, 4 ... up to 30 s after its previous start. One ERROR line.
- **Hung.** A child with `hung_after` beats (`Heartbeat`, from its serving loop) on a pipe
  of its own; silent that long (`START_SECONDS` before its first beat) it gets SIGKILL (a
  stuck or stopped process cannot handle SIGTERM) and is restarted like a dead one.
- **Stop** (`terminate`): SIGTERM, SIGKILL after `STOP_SECONDS`, reaped: never a zombie.

No thread is started here (forking stays safe); `check()` reaps, kills and restarts.
"""

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from game_server.common.settings import STOP_SECONDS

log = logging.getLogger(__name__)

BACKOFF_MAX = 30.0  # a child that keeps dying is restarted at most this often
WATCH_SECONDS = 0.25  # how often `run` checks its children
BEAT_SECONDS = 1.0  # a child beats at most this often
HUNG_SECONDS = 30.0  # the web's default: a worker silent this long is killed
START_SECONDS = 60.0  # the least time a starting child gets for its first beat
HEARTBEAT_ENV = "SUPERVISOR_HEARTBEAT_FD"  # where a child finds its heartbeat's pipe
WORKERS_MAX = 16  # web workers, bounded: each holds a database pool and its memory


@dataclass
class Command:
    """A child that is a command: its argv and environment, its output to `log_path` (opened
    at each start, appended) or to `stderr`, the file descriptors it inherits."""

    argv: Sequence[str]
    env: dict[str, str] | None = None
    log_path: Path | None = None
    stderr: IO | None = None
    pass_fds: Sequence[int] = ()
    group: bool = False


@dataclass
class Fork:
    """A child that is this process forked, running `work()` until SIGTERM."""

    work: Callable[[], None]
    group: bool = field(default=False, init=False)


@dataclass
class Child:
    """One supervised child: how to start it, its process now, its restarts and beats."""

    name: str
    how: Command | Fork
    label: str  # how log lines name it ("web worker")
    detail: str = ""  # what its start line adds (" slot=0")
    restart: bool = False
    hung_after: float | None = None
    process: "subprocess.Popen | Forked | None" = None
    started_at: float = 0.0
    due_at: float = 0.0  # when an ended child may start again
    restarts: int = 0
    exit_code: int | None = None  # of a child that ended and is not restarted
    beat_fd: int | None = None  # the read end of its heartbeat's pipe
    beat_at: float | None = None  # its latest beat (None: none since its start)


class Forked:
    """A forked child as `subprocess.Popen` shows one: its pid, `poll`, `wait`."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit code (minus the signal), or None while it runs; reaps it."""
        if self.returncode is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """The exit code once it ends; `subprocess.TimeoutExpired` after `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
            time.sleep(0.05)
        return code


def restart_delay(ran: float, restarts: int) -> tuple[int, float]:
    """The one backoff: (quick deaths so far, seconds after its start it may start again)."""
    restarts = restarts + 1 if ran < BACKOFF_MAX else 0
    return restarts, min(2.0 ** (restarts - 1), BACKOFF_MAX) if restarts else 0.0


def terminate(
    process: "subprocess.Popen | Forked", group: bool = False, timeout: float = STOP_SECONDS
) -> int:
    """Stop a child: SIGTERM (to its group with `group`), SIGKILL after `timeout`; reaped.
    Its exit code."""
    _send(process, signal.SIGTERM, group)
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("child did not stop in %.0f s, killing it pid=%d", timeout, process.pid)
        _send(process, signal.SIGKILL, group)
        code = process.wait()
    if group:
        _send(process, signal.SIGKILL, group)  # anything the child left in its group
    return code


def _send(process: "subprocess.Popen | Forked", sig: int, group: bool) -> None:
    """`sig` to a child (or its group) that has not been reaped (its pid is still its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(process.pid, sig)
        elif process.poll() is None:
            os.kill(process.pid, sig)


class Supervisor:
    """Children started, restarted and stopped by one set of rules (module docstring)."""

    def __init__(self) -> None:
        """No child yet."""
        self.children: dict[str, Child] = {}
        self.started: list[int] = []  # every pid ever started, for the record
        self.stopping = False
        self._lock = threading.RLock()  # `check` (in a thread) never races a stop
        self._lifeline_r, self._lifeline_w = os.pipe()

    def add(self, name: str, how: Command | Fork, label: str = "", **options: Any) -> int:
        """Start child `name` now (`Child`'s fields are the options); its pid."""
        child = Child(name, how, label or f"child {name}", **options)
        with self._lock:
            self.children[name] = child
            self._start(child)
            assert child.process is not None
            return child.process.pid

    def check(self) -> None:
        """Reap the children that ended, kill the hung ones, restart those that are due."""
        with self._lock:
            now = time.monotonic()
            for child in list(self.children.values()):
                if child.process is None:
                    if child.restart and not self.stopping and now >= child.due_at:
                        self._start(child)
                    continue
                code = child.process.poll()
                if code is None:
                    code = self._unless_hung(child, now)
                if code is not None:
                    self._ended(child, code)

    def run(self, watch_stdin: bool = False, heartbeat: "Heartbeat | None" = None) -> None:
        """Supervise in this thread until SIGTERM or SIGINT (or, with `watch_stdin`, the end
        of stdin), beating `heartbeat` at each turn; then stop every child."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not self.stopping:
                self._wait(watch_stdin)
                if heartbeat is not None:
                    heartbeat.beat()
                self.check()
        finally:
            self.stopping = True
            self.stop_all()
            self.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self, name: str, timeout: float = STOP_SECONDS) -> int | None:
        """Stop child `name` (`terminate`); its exit code (None if it was not running)."""
        with self._lock:
            child = self.children.pop(name, None)
        if child is None or child.process is None:
            return None if child is None else child.exit_code
        code = terminate(child.process, child.how.group, timeout)
        _close(child.beat_fd)  # its heartbeat's pipe
        child.beat_fd = None
        log.info("%s stopped pid=%d exit=%s", child.label, child.process.pid, code)
        return code

    def stop_all(self, timeout: float = STOP_SECONDS) -> None:
        """Stop every child: SIGTERM to all first, so that they stop in parallel."""
        with self._lock:
            names = list(self.children)
            for child in self.children.values():
                if child.process is not None:
                    _send(child.process, signal.SIGTERM, child.how.group)
        for name in names:
            self.stop(name, timeout)

    def wait(self, name: str, timeout: float) -> int:
        """Child `name`'s exit code once it ends (a training job); stopped after `timeout`."""
        process = self.children[name].process
        try:
            return process.wait(timeout)  # type: ignore[union-attr]
        finally:
            self.stop(name)

    def exited(self) -> dict[str, int]:
        """The children without `restart` that ended by themselves, with their exit codes."""
        self.check()
        with self._lock:
            return {c.name: c.exit_code for c in self.children.values() if c.exit_code is not None}

    def close(self) -> None:
        """Close the lifeline: children still running see their stdin end."""
        _close(self._lifeline_r)
        _close(self._lifeline_w)

    def _on_signal(self, _signum: int, _frame: object) -> None:
        """SIGTERM or SIGINT: `run` leaves its loop (at its next turn)."""
        self.stopping = True

    def _wait(self, watch_stdin: bool) -> None:
        """One turn: until a beat, the end of stdin (then stop) or WATCH_SECONDS."""
        with self._lock:
            fds = [c.beat_fd for c in self.children.values() if c.beat_fd is not None]
        if watch_stdin:
            fds.append(sys.stdin.fileno())
        with contextlib.suppress(InterruptedError):
            readable, _, _ = select.select(fds, [], [], WATCH_SECONDS)
            stdin = sys.stdin.fileno()
            if watch_stdin and stdin in readable and not os.read(stdin, 4096):
                log.info("supervisor's stdin closed pid=%d; stopping", os.getpid())
                self.stopping = True

    def _start(self, child: Child) -> None:
        """Start `child`'s process (with a heartbeat's pipe when it is watched for hangs)."""
        beat_r, beat_w = os.pipe() if child.hung_after is not None else (None, None)
        try:
            if isinstance(child.how, Fork):
                child.process = self._fork(child.how, beat_r, beat_w)
            else:
                child.process = self._popen(child.how, beat_w)
        except BaseException:
            _close(beat_r)
            raise
        finally:  # the child's now (or nobody's: it did not start)
            _close(beat_w)
        if beat_r is not None:
            os.set_blocking(beat_r, False)
        now = time.monotonic()
        child.beat_fd, child.beat_at = beat_r, None
        child.started_at, child.exit_code = now, None
        self.started.append(child.process.pid)
        log.info("%s started pid=%d%s", child.label, child.process.pid, child.detail)

    def _popen(self, how: Command, beat_w: int | None) -> subprocess.Popen:
        """A command as a child: stdin the lifeline, the heartbeat's fd named in its env."""
        env = dict(os.environ if how.env is None else how.env)
        fds = tuple(how.pass_fds)
        if beat_w is not None:
            env[HEARTBEAT_ENV] = str(beat_w)
            fds += (beat_w,)
        log_file = open(how.log_path, "ab") if how.log_path else None  # noqa: SIM115
        with log_file or contextlib.nullcontext():
            return subprocess.Popen(
                list(how.argv),
                env=env,
                stdin=self._lifeline_r,
                stdout=log_file,
                stderr=subprocess.STDOUT if log_file else how.stderr,
                pass_fds=fds,
                start_new_session=how.group,
            )

    def _fork(self, how: Fork, beat_r: int | None, beat_w: int | None) -> Forked:
        """This process forked; the child runs `how.work()` and never returns."""
        pid = os.fork()
        if pid:
            return Forked(pid)
        code = 1
        try:  # the child: the lifeline as stdin, its own heartbeat, default signals
            os.dup2(self._lifeline_r, 0)
            theirs = [c.beat_fd for c in self.children.values()] + [beat_r]
            for fd in [self._lifeline_r, self._lifeline_w, *theirs]:
                _close(fd)
            if beat_w is not None:
                os.environ[HEARTBEAT_ENV] = str(beat_w)
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            end_with_stdin()
            how.work()
            code = 0
        except BaseException:
            log.exception("child failed pid=%d", os.getpid())
        finally:
            logging.shutdown()
            os._exit(code)

    def _unless_hung(self, child: Child, now: float) -> int | None:
        """Take in `child`'s beats; SIGKILL it when silent too long: then its exit code."""
        if child.hung_after is None or child.process is None:
            return None
        with contextlib.suppress(BlockingIOError):
            beats = os.read(child.beat_fd, 4096) if child.beat_fd is not None else None
            if beats:
                child.beat_at = now
            elif beats == b"":  # it closed its end: no more beats (and no busy `select`)
                _close(child.beat_fd)
                child.beat_fd = None
        limit = child.hung_after if child.beat_at else max(child.hung_after, START_SECONDS)
        silent = now - (child.beat_at or child.started_at)
        if silent < limit:
            return None
        hung = f"{child.label} hung pid={child.process.pid}{child.detail}"
        log.error("%s: no heartbeat for %.0f s; killing it", hung, silent)
        _send(child.process, signal.SIGKILL, child.how.group)
        return child.process.wait()

    def _ended(self, child: Child, code: int) -> None:
        """A child ended by itself (or was killed as hung): one line; restart it when due."""
        assert child.process is not None
        pid = child.process.pid
        _close(child.beat_fd)  # its heartbeat's pipe
        child.beat_fd = None
        child.process = None
        if not child.restart or self.stopping:
            child.exit_code = code
            log.info("%s exited pid=%d exit=%s", child.label, pid, code)
            return
        ran = time.monotonic() - child.started_at
        child.restarts, wait = restart_delay(ran, child.restarts)
        child.due_at = child.started_at + wait
        log.error("%s died pid=%d exit=%s%s; restarting it", child.label, pid, code, child.detail)


def _close(fd: int | None) -> None:
    """Close `fd` if it is one and still open."""
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


class Heartbeat:
    """A child's side of its heartbeat: `beat()` often (it writes at most once a second)."""

    def __init__(self, fd: int | None):
        """`fd`: the write end of the pipe (None: no supervisor watches; beats do nothing)."""
        self.fd = fd
        self._at = -BEAT_SECONDS
        if fd is not None:
            os.set_blocking(fd, False)  # a supervisor that stops reading never blocks us

    @classmethod
    def from_environ(cls) -> "Heartbeat":
        """The heartbeat the supervisor named in the environment (removed, so that this
        process's own children do not take it for theirs)."""
        fd = os.environ.pop(HEARTBEAT_ENV, None)
        return cls(int(fd) if fd else None)

    def beat(self) -> None:
        """I am alive (at most one byte a second)."""
        now = time.monotonic()
        if self.fd is None or now - self._at < BEAT_SECONDS:
            return
        self._at = now
        with contextlib.suppress(OSError):  # full, or the supervisor is gone
            os.write(self.fd, b".")


def end_with_stdin() -> None:
    """In a child: when stdin ends (the supervisor is gone), SIGTERM to itself, and exit
    STOP_SECONDS later if that did not end it (a daemon thread)."""

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        log.warning("the supervisor is gone (stdin closed): stopping pid=%d", os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(STOP_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="end-with-stdin", daemon=True).start()
