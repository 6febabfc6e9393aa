"""Child processes that never outlive the demo.

Each child runs in a session (and process group) of its own, so a Ctrl-C in the terminal
reaches only the demo, which then stops the children in order: SIGTERM to the group, a
wait, SIGKILL after a timeout, and a final wait so nothing is left as a zombie. Children
also hold a pipe from the demo on stdin and exit by themselves when it closes (the demo
was killed with SIGKILL and could not clean up).
"""

import contextlib
import logging
import os
import signal
import subprocess
import threading
from pathlib import Path

from game_server.settings import STOP_SECONDS

log = logging.getLogger(__name__)


class ChildProcesses:
    """The processes one demo started; `stop_all()` is safe to call any number of times."""

    def __init__(self) -> None:
        """No children yet."""
        self.running: dict[str, subprocess.Popen] = {}
        self.started: list[int] = []  # every pid ever started, for the record (demo.json)
        self._lock = threading.Lock()

    def start(self, name: str, argv: list[str], env: dict, log_path: Path) -> subprocess.Popen:
        """Start `argv` as child `name`, output to `log_path`, in a process group of its own."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as out:
            process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with self._lock:
            self.running[name] = process
            self.started.append(process.pid)
        log.info("child started name=%s pid=%d", name, process.pid)
        return process

    def stop(self, name: str, timeout: float = STOP_SECONDS) -> int | None:
        """Stop child `name` and its group; its exit status (None if it was not running)."""
        with self._lock:
            process = self.running.pop(name, None)
        if process is None:
            return None
        _signal_group(process, signal.SIGTERM)
        try:
            status = process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("child did not stop in %.0f s, killing it name=%s", timeout, name)
            _signal_group(process, signal.SIGKILL)
            status = process.wait()
        _signal_group(process, signal.SIGKILL)  # anything the child left in its group
        with contextlib.suppress(OSError):
            if process.stdin:
                process.stdin.close()
        log.info("child stopped name=%s pid=%d status=%s", name, process.pid, status)
        return status

    def stop_all(self, timeout: float = STOP_SECONDS) -> None:
        """Stop every running child: SIGTERM to all first, so they stop in parallel."""
        with self._lock:
            names = list(self.running)
            processes = list(self.running.values())
        for process in processes:
            _signal_group(process, signal.SIGTERM)
        for name in names:
            self.stop(name, timeout)

    def wait(self, name: str, timeout: float) -> int:
        """Wait for child `name` to exit by itself (a training job); its exit status."""
        process = self.running[name]
        try:
            status = process.wait(timeout)
        finally:
            self.stop(name)  # a timeout stops it; a finished one is only forgotten
        return status

    def exited(self) -> dict[str, int]:
        """The children that exited by themselves, with their status."""
        with self._lock:
            return {n: p.returncode for n, p in self.running.items() if p.poll() is not None}

    def pids(self) -> dict[str, int]:
        """The running children's pids by name."""
        with self._lock:
            return {n: p.pid for n, p in self.running.items()}


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    """Send `sig` to the child's process group (it leads one: start_new_session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
