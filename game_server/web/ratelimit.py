"""Failed instructor logins per client: after LIMIT in WINDOW seconds, wait for the oldest.

Per process (one waitress process serves the game; several workers would each allow
LIMIT): enough to turn 300 guesses a second into 5 a minute. Memory stays bounded: the
failures of at most CLIENTS_MAX clients are kept.
"""

import math
import threading
import time
from collections import deque
from collections.abc import Callable

LIMIT = 5
WINDOW = 60.0
CLIENTS_MAX = 10_000

Clock = Callable[[], float]


class FailureLimit:
    """Recent failures by client, and how long a client must wait before trying again."""

    def __init__(
        self,
        limit: int = LIMIT,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.limit = limit
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may try again (0: now)."""
        now = self.clock()
        with self._lock:
            recent = self._recent(client, now)
            if len(recent) < self.limit:
                return 0
            return max(1, math.ceil(recent[0] + self.window - now))

    def failed(self, client: str) -> None:
        """Count one failure of `client`."""
        now = self.clock()
        with self._lock:
            if client not in self._failures and len(self._failures) >= CLIENTS_MAX:
                self._failures.clear()  # a flood of addresses: forget, rather than grow
            self._failures.setdefault(client, deque(maxlen=self.limit)).append(now)

    def _recent(self, client: str, now: float) -> deque[float]:
        """The failures of `client` within the window (older ones dropped)."""
        recent = self._failures.get(client, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if not recent:
            self._failures.pop(client, None)
        return recent
