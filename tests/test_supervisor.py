"""The one way the game starts, restarts and stops its child processes (issue 25,
`game_server/common/supervisor.py`): real child processes, each rule seen happen.

The web's own tests show it at work in its three places: tests/test_web_workers.py (forked
web workers; a hung one, SIGSTOPped, is replaced), tests/test_web_process.py (`run`'s
web process) and tests/test_demo.py (the bots)."""

import contextlib
import os
import signal
import sys

import pytest
from test_web_process import alive, wait_for

from game_server.common import supervisor

# A child that beats every 0.1 s (a heartbeat is written at most once a second).
BEATING = (
    "import time\nfrom game_server.common.supervisor import Heartbeat\n"
    "beat = Heartbeat.from_environ()\nwhile True:\n    beat.beat()\n    time.sleep(0.1)\n"
)
# A child that ignores SIGTERM (a stuck clean-up), and tells when it is ready.
DEAF = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(600)\n"  # noqa: E501
# A child that ends itself when its stdin (the supervisor's lifeline) ends.
LIFELINE = (
    "import time\nfrom game_server.common.supervisor import end_with_stdin\n"
    "end_with_stdin()\ntime.sleep(600)\n"
)


def python(code: str) -> supervisor.Command:
    """`python -c code` as a child in a process group of its own."""
    return supervisor.Command([sys.executable, "-c", code], group=True)


@contextlib.contextmanager
def supervised():
    """A supervisor whose children are all stopped at the end, even when a test fails."""
    children = supervisor.Supervisor()
    try:
        yield children
    finally:
        children.stopping = True
        children.stop_all(timeout=1)
        children.close()


def pid(children: supervisor.Supervisor, name: str) -> int | None:
    """The pid of child `name` now (None while it is not running)."""
    process = children.children[name].process
    return None if process is None else process.pid


def checking(children: supervisor.Supervisor, condition, limit: float = 60.0):
    """`wait_for(condition)`, the supervisor checking its children before each look."""

    def checked():
        children.check()
        return condition()

    return wait_for(checked, limit)


def test_the_one_backoff():
    assert supervisor.restart_delay(ran=600, restarts=4) == (0, 0.0)  # it was healthy: at once
    assert supervisor.restart_delay(ran=0.5, restarts=0) == (1, 1.0)
    assert supervisor.restart_delay(ran=0.5, restarts=1) == (2, 2.0)
    assert supervisor.restart_delay(ran=0.5, restarts=2) == (3, 4.0)
    assert supervisor.restart_delay(ran=0.5, restarts=20) == (21, supervisor.BACKOFF_MAX)


def test_a_child_that_dies_is_restarted_and_one_not_restarted_is_reported():
    with supervised() as children:
        first = children.add("web", python("import time; time.sleep(600)"), restart=True)
        once = children.add("job", python("raise SystemExit(3)"))
        os.kill(first, signal.SIGKILL)
        checking(children, lambda: pid(children, "web") not in (None, first))
        assert wait_for(children.exited) == {"job": 3}  # reported, never started again
        assert children.started == [first, once, pid(children, "web")]


def test_a_hung_child_is_killed_and_replaced(caplog):
    with supervised() as children:
        first = children.add("beating", python(BEATING), restart=True, hung_after=2)
        checking(children, lambda: children.children["beating"].beat_at)
        os.kill(first, signal.SIGSTOP)  # alive, but silent
        checking(children, lambda: pid(children, "beating") not in (None, first))
        assert not alive(first)
        assert f"child beating hung pid={first}" in caplog.text
        assert f"child beating died pid={first} exit=-9; restarting it" in caplog.text


def test_a_child_deaf_to_sigterm_is_killed_after_the_grace(tmp_path):
    log_path = tmp_path / "deaf.log"
    with supervised() as children:
        command = supervisor.Command([sys.executable, "-c", DEAF], log_path=log_path, group=True)
        deaf = children.add("deaf", command)
        wait_for(lambda: "ready" in log_path.read_text())
        assert children.stop("deaf", timeout=0.5) == -signal.SIGKILL
        assert not alive(deaf) and children.children == {}


def test_a_child_ends_when_its_supervisor_is_gone():
    with supervised() as children:
        orphan = children.add("orphan", python(LIFELINE))
        children.close()  # what the supervisor's death does to the lifeline
        checking(children, lambda: "orphan" in children.exited(), 30)
        assert children.exited()["orphan"] == -signal.SIGTERM  # it stopped itself
        assert not alive(orphan)


@pytest.mark.parametrize("workers", [0, supervisor.WORKERS_MAX + 1])
def test_the_web_workers_are_bounded(workers):
    from game_server.processes import webserver

    with pytest.raises(ValueError, match="workers must be between 1 and 16"):
        webserver.serve("sqlite://", "127.0.0.1", 0, workers=workers)
