"""A benchmark stopped with SIGTERM (`kill`, `timeout`) stops what it started.

Python's default SIGTERM ends the process at once: no `finally` runs, and the APIs, game
servers and load generators a benchmark started go on without it. As SystemExit, every
`finally` and context manager on the way out runs, as after Ctrl-C.
"""

import signal
import sys


def on_sigterm_clean_up() -> None:
    """Turn SIGTERM into SystemExit(143) in the main thread."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
