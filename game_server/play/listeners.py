"""Who owns the socket a team's API listens on, when that API is on the game's own server.

Teams have shell accounts on the game's server, and any user may listen on any free port
above 1023: a team could bind another team's API port before that team starts its API
(or while it restarts) and answer in its name. So when a team has a Linux user (provisioned
with `users create`, recorded with `teams add --user`) and its URL's host is loopback, the
customer sends to it only if every listening socket that could take the connection (on the
URL's address or a wildcard address, on its port) belongs to that user; anything else is
scored `wrong_owner`. Teams without a Linux user (a registered URL on another host, the
demo bots) are not checked.

The owners come from /proc/net/tcp and /proc/net/tcp6 (the `uid` column, world-readable,
the game's own network namespace), read about once per `TTL` seconds for every team, off
the event loop, so a request costs a dict lookup.
"""

import ipaddress
import pwd
import sys
import threading
import time
from collections import defaultdict

TTL = 1.0  # seconds a snapshot of the listening sockets is used
LISTEN = "0A"  # the TCP state column's value for a listening socket
TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
LOOPBACK_NAMES = {"localhost": ("127.0.0.1", "::1")}


def _address(hex_text: str) -> IPAddress:
    """The address /proc/net/tcp spells: 32-bit words in host byte order, hex."""
    raw = bytes.fromhex(hex_text)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    addr = ipaddress.ip_address(raw)
    mapped = getattr(addr, "ipv4_mapped", None)  # a dual-stack socket's IPv4 address
    return mapped or addr


def parse_table(text: str) -> list[tuple[IPAddress, int, int]]:
    """The listening sockets of one /proc/net/tcp* table: (address, port, owner uid)."""
    found = []
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8 or cols[3] != LISTEN:
            continue
        host, _, port = cols[1].partition(":")
        try:
            found.append((_address(host), int(port, 16), int(cols[7])))
        except ValueError:
            continue
    return found


def read_listeners() -> dict[int, list[tuple[IPAddress, int]]]:
    """Every listening TCP socket of this network namespace, by port: (address, uid)."""
    by_port: dict[int, list[tuple[IPAddress, int]]] = defaultdict(list)
    for path in TABLES:
        try:
            with open(path) as table:
                text = table.read()
        except OSError:  # no IPv6 on this machine
            continue
        for addr, port, uid in parse_table(text):
            by_port[port].append((addr, uid))
    return dict(by_port)


def _loopback(host: str) -> list[IPAddress]:
    """The loopback addresses a URL's host connects to (none: not on this server)."""
    texts = LOOPBACK_NAMES.get(host.lower().rstrip("."), (host.strip("[]"),))
    try:
        addrs = [ipaddress.ip_address(t) for t in texts]
    except ValueError:
        return []
    return [a for a in addrs if a.is_loopback]


def user_uids() -> dict[str, int]:
    """Every Linux user of this server, by name (a team's user missing here: unchecked)."""
    return {entry.pw_name: entry.pw_uid for entry in pwd.getpwall()}


def _takers(bound: list[tuple[IPAddress, int]], addr: IPAddress) -> set[int]:
    """The owners of the sockets the kernel gives a connection to `addr` (on their port).

    As the kernel chooses: a socket on the address itself first, else a wildcard of the
    same family, else one of the other family (an IPv6 `::` that may also take IPv4).
    Only that tier counts: a wildcard that never gets the connection is no one's problem.
    """
    exact = {uid for a, uid in bound if a == addr}
    same = {uid for a, uid in bound if a.is_unspecified and a.version == addr.version}
    other = {uid for a, uid in bound if a.is_unspecified and a.version != addr.version}
    return exact or same or other


class Listeners:
    """The owners of the listening sockets, from a snapshot at most about `ttl` seconds old.

    Reading /proc/net/tcp takes milliseconds (the kernel walks every socket), so after the
    first snapshot a stale one is replaced by a thread (`background`) while the answers
    come from the old one: the customer's event loop never waits for it. The answers are
    kept per (host, port, uid) until the next snapshot, so a request costs a dict lookup.
    """

    def __init__(self, ttl: float = TTL, background: bool = True) -> None:
        """Nothing is read until the first question."""
        self.ttl, self.background = ttl, background
        self._read_at: float | None = None
        self._by_port: dict[int, list[tuple[IPAddress, int]]] = {}
        self._answers: dict[tuple[str, int, int], str | None] = {}

    def _refresh(self, now: float) -> None:
        """A new snapshot: now on the first question, else in a thread (when `background`)."""
        first, self._read_at = self._read_at is None, now
        if first or not self.background:
            self._take(read_listeners())
        else:
            threading.Thread(target=lambda: self._take(read_listeners()), daemon=True).start()

    def _take(self, by_port: dict[int, list[tuple[IPAddress, int]]]) -> None:
        """Use a new snapshot (one assignment each: the loop sees the old or the new one)."""
        self._by_port, self._answers = by_port, {}

    def strangers(self, host: str, port: int, uid: int) -> set[int]:
        """The uids other than `uid` that own a socket which could take a connection to
        host:port (host on loopback; an empty set elsewhere, or with no listener at all)."""
        owners: set[int] = set()
        for addr in _loopback(host):
            owners |= _takers(self._by_port.get(port, []), addr)
        return owners - {uid}

    def problem(self, host: str, port: int, uid: int | None) -> str | None:
        """`wrong_owner` when someone else than the team's user listens there, else None."""
        if uid is None:
            return None
        now = time.monotonic()
        if self._read_at is None or now - self._read_at >= self.ttl:
            self._refresh(now)
        key = (host, port, uid)
        answer = self._answers.get(key, "?")
        if answer == "?":
            answer = "wrong_owner" if self.strangers(host, port, uid) else None
            self._answers[key] = answer
        return answer


LISTENERS = Listeners()  # one snapshot for the whole process
