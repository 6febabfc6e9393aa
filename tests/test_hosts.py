"""The host allow-list: registration checks and the resolver's send-time check."""

import asyncio

import pytest

from game_server.play import hosts
from game_server.play.hosts import AllowList, HostNotAllowed, check_url
from game_server.play.resolver import AllowListResolver


def test_default_list_allows_loopback_only():
    """Loopback addresses and `localhost` pass; others are refused with one line."""
    allowed = hosts.DEFAULT_ALLOWED_HOSTS
    for url in (
        "http://127.0.0.1:8001/predict",
        "http://127.5.6.7/predict",
        "http://[::1]:8001/predict",
        "https://localhost:8443/",
        "http://LOCALHOST./predict",
    ):
        check_url(url, allowed)
    for url in ("http://10.0.0.1/predict", "http://[2001:db8::1]/", "http://169.254.169.254/"):
        with pytest.raises(ValueError, match="not on the allow-list") as info:
            check_url(url, allowed)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/x", "scheme must be http or https"),
        ("file:///etc/passwd", "scheme must be http or https"),
        ("127.0.0.1:8000/predict", "scheme must be http or https"),
        ("http:///predict", "no host"),
    ],
)
def test_malformed_urls_are_refused(url, message):
    """Wrong scheme or no host: a clear one-line refusal."""
    with pytest.raises(ValueError, match=message):
        check_url(url, hosts.DEFAULT_ALLOWED_HOSTS)


def test_networks_addresses_and_names():
    """CIDR networks, single addresses and listed names; IPv4-mapped IPv6 counts as IPv4."""
    allow = AllowList(["10.1.0.0/16", "192.0.2.7", "team-a.example.org", "2001:db8::/32"])
    assert allow.allows_address("10.1.200.3") and not allow.allows_address("10.2.0.1")
    assert allow.allows_address("192.0.2.7") and not allow.allows_address("192.0.2.8")
    assert allow.allows_address("::ffff:10.1.0.9")
    assert allow.allows_address("2001:db8::5")
    assert allow.allows_name("Team-A.example.org.") and not allow.allows_name("team-b.example.org")
    check_url("http://team-a.example.org:8000/predict", allow)


def test_a_name_not_listed_is_checked_on_its_addresses():
    """Registration resolves an unlisted name; it passes only if an address is allowed."""
    check_url("http://localhost:9000/", ["127.0.0.0/8", "::1"])
    with pytest.raises(ValueError, match=r"host localhost \(.*127\.0\.0\.1.*\) is not on"):
        check_url("http://localhost:9000/", ["10.0.0.0/8"])
    # Without resolving, the name is left to the send-time check.
    assert hosts.url_problem("http://localhost:9000/", ["10.0.0.0/8"], resolve=False) is None


@pytest.mark.parametrize("entry", ["", "10.0.0.0/33", "not a host!", "http://x/"])
def test_bad_entries_are_refused(entry):
    """A malformed allow-list entry is a one-line ValueError naming it."""
    with pytest.raises(ValueError, match="allowed_hosts"):
        AllowList([entry])


def test_resolver_filters_refuses_and_trusts_listed_names():
    """The resolver keeps allowed addresses, refuses when none are, trusts listed names."""

    class FakeDNS:
        """A resolver with fixed answers, standing in for DNS that changed."""

        async def resolve(self, host, port=0, family=0):
            return [
                {"hostname": host, "host": a, "port": port, "family": 2, "proto": 0, "flags": 0}
                for a in ("10.9.9.9", "127.0.0.1")
            ]

        async def close(self):
            pass

    async def run(entries, host):
        resolver = AllowListResolver(entries, FakeDNS())
        try:
            return [r["host"] for r in await resolver.resolve(host, 80)]
        finally:
            await resolver.close()

    assert asyncio.run(run(["127.0.0.0/8"], "team.example")) == ["127.0.0.1"]
    assert asyncio.run(run(["team.example"], "team.example")) == ["10.9.9.9", "127.0.0.1"]
    with pytest.raises(HostNotAllowed, match="outside the allow-list"):
        asyncio.run(run(["192.168.0.0/16"], "team.example"))
