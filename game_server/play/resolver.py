"""The customer's DNS resolver: the customer connects only to addresses the allow-list holds.

Used by the rounds' connection pool (`pool.Pool`) and the probes' aiohttp session alike.

Apart from `hosts` so that the allow-list's rules stay free of aiohttp (the web pages use
them to check a team's URL at registration).
"""

import socket
from collections.abc import Iterable

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from game_server.play.hosts import AllowList, HostNotAllowed, as_allow_list


class AllowListResolver(AbstractResolver):
    """An aiohttp resolver that only hands out addresses the allow-list holds.

    aiohttp connects to what the resolver returns, so filtering here checks the address
    actually connected to. (aiohttp does not call the resolver for IP-address hosts: the
    customer checks those itself with `AllowList.allows_address`.)
    """

    def __init__(
        self, allowed: "AllowList | Iterable[str]", resolver: AbstractResolver | None = None
    ):
        """Wrap `resolver` (aiohttp's default when None); must be built inside the loop."""
        self.allow = as_allow_list(allowed)
        self._resolver = resolver or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The allowed addresses of `host`; HostNotAllowed when there are none."""
        results = await self._resolver.resolve(host, port, family)
        if self.allow.allows_name(host):
            return results
        kept = [r for r in results if self.allow.allows_address(r["host"])]
        if not kept:
            found = ", ".join(sorted({r["host"] for r in results}))
            raise HostNotAllowed(None, f"host {host} resolves to {found}, outside the allow-list")
        return kept

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._resolver.close()
