"""Running a local command with a deadline and a bound on what it prints.

`run_bounded` feeds the command its stdin and reads its stdout and stderr together (no pipe
deadlock), each up to a bound: a command that prints more, or runs past its deadline, is
killed with everything it started (its own session) and TooMuchOutput or TimeoutError is
raised. The executors turn those into one-line ExecErrors.
"""

import os
import select
import selectors
import signal
import subprocess
import time
from typing import IO, NamedTuple


class TooMuchOutput(Exception):
    """A command printed more than its bound."""


class Output(NamedTuple):
    """A command's exit status and its bounded stdout and stderr."""

    rc: int
    out: bytes
    err: bytes


def run_bounded(argv: list[str], stdin: bytes, timeout: float, limit: int) -> Output:
    """Run `argv` with `stdin`; (rc, stdout, stderr), each output at most `limit` bytes."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its children are stopped with it
    )
    try:
        out, err = _communicate(proc, stdin, time.monotonic() + timeout, limit)
    finally:
        _stop(proc)
    return Output(proc.returncode, out, err)


def _communicate(
    proc: subprocess.Popen[bytes], data: bytes, deadline: float, limit: int
) -> tuple[bytes, bytes]:
    """Feed `data` to the process and read its stdout and stderr, each at most `limit` bytes."""
    assert proc.stdin and proc.stdout and proc.stderr
    chunks = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    feed = _Feed(proc.stdin, data)
    with selectors.DefaultSelector() as sel:
        for fd in chunks:
            sel.register(fd, selectors.EVENT_READ)
        if feed.open:
            sel.register(proc.stdin.fileno(), selectors.EVENT_WRITE)
        while sel.get_map():
            for key, _ in sel.select(_left(deadline)):
                if key.fd not in chunks:
                    if not feed.write():
                        sel.unregister(key.fd)
                    continue
                got = os.read(key.fd, 65536)
                if not got:
                    sel.unregister(key.fd)
                chunks[key.fd] += got
                if len(chunks[key.fd]) > limit:
                    raise TooMuchOutput
    try:
        proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:  # it closed its output but goes on
        raise TimeoutError from None
    return bytes(chunks[proc.stdout.fileno()]), bytes(chunks[proc.stderr.fileno()])


def _left(deadline: float) -> float:
    """Seconds left until `deadline`; TimeoutError when none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


class _Feed:
    """A command's stdin, written a pipe-sized piece at a time (a write that never blocks)."""

    def __init__(self, pipe: IO[bytes], data: bytes) -> None:
        """Close the pipe at once when there is nothing to write."""
        self.pipe, self.data, self.sent = pipe, data, 0
        self.open = bool(data)
        if not self.open:
            pipe.close()

    def write(self) -> bool:
        """Write the next piece; False (and the pipe closed) when all is written or refused."""
        try:
            self.sent += os.write(
                self.pipe.fileno(), self.data[self.sent : self.sent + select.PIPE_BUF]
            )
        except BrokenPipeError:  # the command stopped reading: the rest is not wanted
            self.sent = len(self.data)
        if self.sent < len(self.data):
            return True
        self.pipe.close()
        self.open = False
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill the command and what it started if it is still running; close its pipes."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:  # not ours to signal (sudo) or gone already
            proc.kill()
        proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe:
            pipe.close()
