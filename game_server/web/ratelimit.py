"""Limits per client: failed instructor logins, and requests to the expensive endpoints.

`FailureLimit`: after LIMIT failures in WINDOW seconds, wait for the oldest to age out;
enough to turn 300 guesses a second into 5 a minute. `RequestBudget`: a token bucket,
`rate` requests a second on average and `burst` at once, for the endpoints whose answer
costs a query or a computation. Both count per process (one `game-server web` process
serves the game; several workers would each allow as much), and keep at most
CLIENTS_MAX clients, so a flood of addresses cannot grow the memory.

Who a client is (`client_key`): its address, except that every loopback address (all of
127.0.0.0/8 and ::1) is one client. Every user of the game's server reaches it from there
(and so does every SSH tunnel): counted apart, 127.0.0.2, 127.0.0.3, ... would each be a
fresh budget for one team. A team that floods from loopback spends loopback's budget only;
the instructor's right token and a team's own token never depend on it (`auth`).
"""

import ipaddress
import math
import threading
import time
from collections import deque
from collections.abc import Callable

LIMIT = 5
WINDOW = 60.0
CLIENTS_MAX = 10_000

LOOPBACK = "loopback"

Clock = Callable[[], float]


def client_key(address: str | None) -> str:
    """The client a budget counts for `address`: "loopback" for any loopback address."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.2 is 127.0.0.2
    return LOOPBACK if ip.is_loopback else address


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


class RequestBudget:
    """Requests per client: `rate` a second on average, up to `burst` at once."""

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.refused = 0  # requests refused since the last `log_due()`
        self._logged_at = -math.inf
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)

    def take(self, client: str) -> int:
        """Spend one request of `client`: 0 when it may go on, else the seconds to wait."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if client not in self._buckets and len(self._buckets) >= CLIENTS_MAX:
                self._buckets.clear()  # a flood of addresses: forget, rather than grow
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                self.refused += 1
                return max(1, math.ceil((1.0 - tokens) / self.rate))
            self._buckets[client] = (tokens - 1.0, now)
            return 0

    def log_due(self, every: float = 10.0) -> int:
        """The refusals to log now (at most one line per `every` seconds), else 0."""
        now = self.clock()
        with self._lock:
            if now - self._logged_at < every:
                return 0
            self._logged_at, refused, self.refused = now, self.refused, 0
            return refused
