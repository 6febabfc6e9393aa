"""The host allow-list: which team URLs the customer may call (GAME.md §7).

An entry is a host name (`localhost`, `team1.example.org`), an IP address or a CIDR
network (`10.1.0.0/16`). The rule:

- a URL whose host is an IP address is allowed when a listed address or network holds it;
- a URL whose host is a name the instructor listed is allowed, whatever it resolves to
  (the instructor vouched for that name);
- any other name is allowed only through its addresses: at send time the customer's
  resolver keeps the resolved addresses inside the listed networks and refuses the name
  when none are, so the address actually connected to is the one checked (DNS can change
  between registration and the request).
"""

import ipaddress
import re
import socket
from collections.abc import Iterable

from yarl import URL

DEFAULT_ALLOWED_HOSTS = ("127.0.0.0/8", "::1", "localhost")

HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*)(\.[a-z0-9_-]+)*\.?", re.IGNORECASE)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class HostNotAllowed(OSError):
    """A URL's host, or every address it resolves to, is outside the allow-list."""


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address `text` spells (IPv4-mapped IPv6 as IPv4), or None for a name."""
    try:
        addr = ipaddress.ip_address(text.strip("[]").split("%")[0])
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped or addr


def _norm_name(name: str) -> str:
    """A host name compared case-insensitively, without the root's trailing dot."""
    return name.strip().rstrip(".").lower()


class AllowList:
    """The parsed allow-list: networks and explicitly listed names."""

    def __init__(self, entries: Iterable[str] = DEFAULT_ALLOWED_HOSTS):
        """Parse `entries`; ValueError (one line) on an empty or malformed entry."""
        self.networks: list[IPNetwork] = []
        self.names: set[str] = set()
        for entry in entries:
            text = str(entry).strip()
            if not text:
                raise ValueError("allowed_hosts: empty entry")
            if "/" in text:
                try:
                    self.networks.append(ipaddress.ip_network(text, strict=False))
                except ValueError as exc:
                    raise ValueError(f"allowed_hosts: bad network {text!r}: {exc}") from None
            elif (addr := _ip(text)) is not None:
                self.networks.append(ipaddress.ip_network(addr))
            elif HOST_NAME.fullmatch(text):
                self.names.add(_norm_name(text))
            else:
                raise ValueError(f"allowed_hosts: {text!r} is not a host name, IP or network")

    def __repr__(self) -> str:
        """The entries, for logs."""
        return f"AllowList({list(self.entries())})"

    def entries(self) -> tuple[str, ...]:
        """The entries as parsed (networks, then names), for storing and comparing."""
        return tuple([str(n) for n in self.networks] + sorted(self.names))

    def take(self, other: "AllowList") -> bool:
        """Become `other` in place (whoever holds this list sees it); True when it changed."""
        if other.entries() == self.entries():
            return False
        self.networks[:] = other.networks
        self.names.clear()
        self.names.update(other.names)
        return True

    def allows_address(self, address: str) -> bool:
        """Whether the IP address `address` is inside a listed address or network."""
        addr = _ip(address)
        return addr is not None and any(addr in net for net in self.networks)

    def allows_name(self, name: str) -> bool:
        """Whether the host name `name` is listed explicitly."""
        return _norm_name(name) in self.names


def as_allow_list(allowed: "AllowList | Iterable[str]") -> AllowList:
    """`allowed` as an AllowList (a sequence of entries is parsed)."""
    return allowed if isinstance(allowed, AllowList) else AllowList(allowed)


def url_problem(
    url: str, allowed: "AllowList | Iterable[str]", resolve: bool = False
) -> str | None:
    """Why the customer may not call `url` (one line), or None when it may.

    Without `resolve`, a host name that is not listed is accepted here and checked on its
    resolved addresses at send time; with `resolve`, it is resolved now as well.
    """
    allow = as_allow_list(allowed)
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        return f"not a URL: {url!r} ({exc})"
    if parsed.scheme not in ("http", "https"):
        return f"the URL's scheme must be http or https, not {parsed.scheme or 'none'!r}: {url}"
    host = parsed.raw_host
    if not host:
        return f"the URL has no host: {url}"
    if _ip(host) is not None:
        if allow.allows_address(host):
            return None
        return f"host {host} is not on the allow-list {allow!r}: {url}"
    if allow.allows_name(host) or not resolve:
        return None
    try:
        infos = socket.getaddrinfo(host, parsed.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve host {host}: {exc}"
    addresses = sorted({str(info[4][0]) for info in infos})
    if any(allow.allows_address(a) for a in addresses):
        return None
    return f"host {host} ({', '.join(addresses)}) is not on the allow-list {allow!r}: {url}"


def check_url(url: str, allowed: "AllowList | Iterable[str]", resolve: bool = True) -> None:
    """Raise ValueError with a one-line message when the customer may not call `url`."""
    problem = url_problem(url, allowed, resolve=resolve)
    if problem is not None:
        raise ValueError(problem)
