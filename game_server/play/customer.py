"""The customer: sends one applicant to every team at the same moment and scores each answer.

One connection pool serves the whole game's rounds (`pool.Pool` of `http1` connections, a
lean HTTP/1.1 client: `http1` says why not aiohttp there): connections to each team are
kept alive and reused, every request has a total time limit (and every round a backstop
just past it, so no round stays in flight), bodies are read with a cap,
redirects are never followed, and the resolver refuses addresses outside the allow-list. The lobby's
health probes go through one aiohttp session with the same rules. Nothing a team does
raises out of `Customer.ask`: every failure becomes a scored `Result` with a reason.
"""

import asyncio
import logging
import resource
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import aiohttp

from game_server.common.records import Result, Score
from game_server.play import hosts, http1, listeners, pool, protocols, scoring
from game_server.play.resolver import AllowListResolver
from game_server.scenario.gamekeys import DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMEOUT

log = logging.getLogger(__name__)

# Idle connections are dropped before the shortest common server idle timeout (gunicorn's
# 2 s), so the customer never sends on a connection the team's server is closing.
KEEPALIVE_SECONDS = 1.5
# Up to this many requests to one team may be open at once (a burst); more wait for a
# connection, within their own time limit, so one hanging team cannot take every socket.
CONNECTIONS_PER_TEAM = 64
CONNECTIONS_TOTAL = 8192
USER_AGENT = "workshop-game-customer"
# A round's backstop, past its time limit: the deadline ends every exchange on time, and
# should one ever escape it (a bug), the round still ends here, never stays in flight.
BACKSTOP_SECONDS = 0.25
KEY_HEADER = "X-Game-Key"


@dataclass(frozen=True, slots=True)
class Target:
    """One active team as the customer sees it."""

    team_id: int
    url: str
    protocol: str = "native"  # native | mlflow | openinference
    model: str | None = None  # model name for openinference
    key: str | None = None  # sent as X-Game-Key: the team's API knows the game by it
    owner: int | None = None  # the uid of the team's Linux user, if it has one (listeners.py)


@dataclass(frozen=True, slots=True)
class Health:
    """A team's health route, probed before the game (not scored): up, or why not."""

    team_id: int
    up: bool
    reason: str | None = None  # a scoring reason: connect_error, timeout, http_status, ...
    status_code: int | None = None


@dataclass(frozen=True, slots=True)
class _Route:
    """What a target's registration means for sending: where to POST, or why not."""

    post_url: str | None
    problem: str | None  # host_not_allowed | internal_error
    endpoint: http1.Endpoint | None = None


def _raise_open_files_limit(wanted: int) -> None:
    """Raise the soft limit on open files towards `wanted` (one socket per connection)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _failure_reason(exc: BaseException) -> str:
    """The scoring reason for an exception raised while talking to a team."""
    cause: BaseException | None = exc
    while cause is not None:  # the resolver's refusal arrives wrapped by aiohttp
        if isinstance(cause, hosts.HostNotAllowed):
            return "host_not_allowed"
        cause = cause.__cause__
    if isinstance(exc, asyncio.TimeoutError):  # aiohttp's timeouts subclass it
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.InvalidURL):
        return "connect_error"
    if isinstance(exc, aiohttp.ClientResponseError):  # the bytes did not parse as HTTP
        return "invalid_http"
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientConnectionError):
        return "connection_closed"
    return "internal_error"


def _key_line(target: Target) -> bytes:
    """The team's own header line: the key its API checks (`teams.api_key`), if any."""
    return b"" if target.key is None else f"{KEY_HEADER}: {target.key}\r\n".encode("ascii")


class Customer:
    """Sends the game's requests to the teams and scores the answers; one per running game."""

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        allowed_hosts: Iterable[str] = hosts.DEFAULT_ALLOWED_HOSTS,
        *,
        connections_per_team: int = CONNECTIONS_PER_TEAM,
        connections_total: int = CONNECTIONS_TOTAL,
    ):
        """Settings only; the session opens in `async with`."""
        if timeout <= 0 or max_body_bytes <= 0:
            raise ValueError("timeout and max_body_bytes must be positive")
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.allow = hosts.as_allow_list(allowed_hosts)
        self._per_team = connections_per_team
        self._total = connections_total
        self._session: aiohttp.ClientSession | None = None
        self._pool: pool.Pool | None = None
        self._routes: dict[tuple[str, str, str | None], _Route] = {}

    def use_allow_list(self, allowed: Iterable[str]) -> bool:
        """Call the hosts of a new allow-list from now on (`game-server allow` mid-game);
        True when it changed. The resolver holds the same list; cached routes are redone."""
        changed = self.allow.take(hosts.as_allow_list(allowed))
        if changed:
            self._routes.clear()
        return changed

    async def __aenter__(self) -> "Customer":
        """Open the game's one HTTP session."""
        _raise_open_files_limit(self._total + 1024)
        self._pool = pool.Pool(
            AllowListResolver(self.allow),
            cap=self.max_body_bytes,
            per_host=self._per_team,
            total=self._total,
            keepalive=KEEPALIVE_SECONDS,
        )
        connector = aiohttp.TCPConnector(
            limit=self._total,
            limit_per_host=self._per_team,
            keepalive_timeout=KEEPALIVE_SECONDS,
            resolver=AllowListResolver(self.allow),
            ttl_dns_cache=10,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            auto_decompress=False,  # a compressed body would escape the size cap
            skip_auto_headers=("Accept-Encoding",),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,  # never through a proxy from the environment
            cookie_jar=aiohttp.DummyCookieJar(),  # teams cannot set state on each other
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the session, the pool and their connections."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def ask(
        self, targets: Sequence[Target], request_id: str, features: dict, label: int
    ) -> list[Result]:
        """Send one request to every target at the same moment; one scored Result each.

        Never raises because of a team; results come back in the order of `targets`.
        """
        if self._pool is None:
            raise RuntimeError("Customer.ask outside `async with Customer(...)`")
        headers = {"User-Agent": USER_AGENT, **protocols.request_headers(request_id)}
        tails: dict[str, bytes] = {}  # each protocol's request after its head, once a round
        for name in {t.protocol for t in targets} & protocols.PROTOCOLS.keys():
            body = protocols.request_body(name, request_id, features)
            tails[name] = http1.request_tail(headers, body)
        loop = self._pool.loop
        deadline = pool.Deadline(loop, self.timeout)
        tasks = [
            loop.create_task(self._ask_one(t, request_id, tails, deadline, label)) for t in targets
        ]
        try:
            if tasks:  # the backstop: no exchange keeps its round in flight past this
                await asyncio.wait(tasks, timeout=self.timeout + BACKSTOP_SECONDS)
        finally:
            deadline.cancel()
            for task in tasks:
                task.cancel()  # only those still running: a bug of ours, not the team's
        return [self._result(task, t, request_id) for task, t in zip(tasks, targets, strict=True)]

    def _result(self, task: "asyncio.Task[Result]", target: Target, request_id: str) -> Result:
        """A finished exchange's result, or a timeout for one the backstop had to end."""
        if task.done() and not task.cancelled():
            return task.result()
        log.error(
            "exchange outlived its time limit team_id=%s request_id=%s; scored as a timeout",
            target.team_id,
            request_id,
        )
        limit_ms = (self.timeout + BACKSTOP_SECONDS) * 1000.0
        return Result(target.team_id, scoring.failure("timeout"), limit_ms)

    async def probe(self, target: Target) -> Health:
        """GET the target's health route: up on HTTP 200 (the body is not read).

        The same session as the game's requests: the allow-list, the time limit and no
        redirects. Never raises because of a team.
        """
        if self._session is None:
            raise RuntimeError("Customer.probe outside `async with Customer(...)`")
        try:
            url = protocols.health_url(target.protocol, target.url)
            if hosts.url_problem(url, self.allow, resolve=False) is not None:
                return Health(target.team_id, False, "host_not_allowed")
            async with self._session.get(url, allow_redirects=False) as resp:
                if resp.status == 200:
                    return Health(target.team_id, True, None, 200)
                return Health(
                    target.team_id, False, scoring.refusal(resp.status).reason, resp.status
                )
        except Exception as exc:
            reason = _failure_reason(exc)
            if reason == "internal_error":  # a bug of ours, or a protocol we do not know
                log.exception("probe failed team_id=%s", target.team_id)
            return Health(target.team_id, False, reason)

    def _route(self, target: Target) -> _Route:
        """Where to POST for `target`, or why not; cached, as targets rarely change."""
        key = (target.url, target.protocol, target.model)
        route = self._routes.get(key)
        if route is None:
            try:
                post_url = protocols.request_url(target.protocol, target.url, target.model)
            except protocols.ProtocolError as exc:
                log.warning("bad target team_id=%s problem=%s", target.team_id, exc)
                route = _Route(None, "internal_error")
            else:
                problem = hosts.url_problem(post_url, self.allow, resolve=False)
                if problem is None:
                    route = _Route(post_url, None, http1.Endpoint.parse(post_url))
                else:
                    route = _Route(post_url, "host_not_allowed")
            if len(self._routes) > 100_000:  # bounded memory whatever the teams do
                self._routes.clear()
            self._routes[key] = route
        return route

    async def _ask_one(
        self,
        target: Target,
        request_id: str,
        tails: dict[str, bytes],
        deadline: pool.Deadline,
        label: int,
    ) -> Result:
        """One team's exchange, scored; every exception becomes a failure."""
        start = time.perf_counter()
        try:
            route = self._route(target)
            if route.problem is not None or route.endpoint is None:
                score = scoring.failure(route.problem or "internal_error")
            else:
                score = await self._exchange(
                    target, route.endpoint, tails[target.protocol], deadline, label
                )
        except Exception:  # a bug of ours must not cost the other teams their answers
            log.exception("unexpected error team_id=%s request_id=%s", target.team_id, request_id)
            score = scoring.failure("internal_error")
        latency_ms = (time.perf_counter() - start) * 1000.0
        if score.reason is not None:
            log.info(
                "request failed team_id=%s request_id=%s reason=%s status=%s latency_ms=%.1f",
                target.team_id,
                request_id,
                score.reason,
                score.status_code,
                latency_ms,
            )
        elif log.isEnabledFor(logging.DEBUG):
            log.debug(
                "request scored team_id=%s request_id=%s outcome=%s latency_ms=%.1f",
                target.team_id,
                request_id,
                score.outcome,
                latency_ms,
            )
        return Result(target.team_id, score, latency_ms)

    async def _exchange(
        self, target: Target, ep: http1.Endpoint, tail: bytes, deadline: pool.Deadline, label: int
    ) -> Score:
        """POST the request, read the answer with a cap (by `deadline`), and score it."""
        if self._pool is None:
            raise RuntimeError("Customer used outside `async with Customer(...)`")
        if squatted := listeners.LISTENERS.problem(ep.host, ep.port, target.owner):
            return scoring.failure(squatted)
        try:
            answer = await self._pool.post(ep, ep.head + _key_line(target) + tail, deadline)
        except http1.ExchangeError as exc:
            log.debug("exchange error team_id=%s error=%s", target.team_id, exc)
            return scoring.failure(exc.reason, exc.status)
        if answer.status != 200:
            head = answer.body[: scoring.EXCERPT_BYTES]
            if answer.location:
                head = f"Location: {answer.location}\n".encode() + head
            return scoring.refusal(answer.status, head)
        if answer.too_large:
            return scoring.failure("too_large", answer.status, answer.body)
        extract = protocols.PROTOCOLS[target.protocol].extract
        return scoring.score_response(
            answer.status, answer.body, label, extract, self.max_body_bytes
        )
