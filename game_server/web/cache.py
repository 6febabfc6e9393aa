"""A tiny per-process cache of JSON answers for the endpoints every open page polls, kept
fresh by a thread of its own, and a WSGI fast path that answers them from memory.

A room full of projectors and laptops polls `/api/leaderboard` every second. The answer
is computed once, by the first request; from then on a refresher thread recomputes it
every `LIVE_CACHE_SECONDS` (default 0.5 s) as long as someone keeps asking (it stops
after `IDLE_SECONDS` without a request, and the next request starts it again), so no
request under load waits for the query. The answer is kept as its bytes and their ETag:
`fast_answers` serves a fresh one straight from the WSGI layer, before Flask routes the
request (a page polling with `If-None-Match` gets a 304), which makes `/api/leaderboard`
cost about what a fixed document costs (docs/PERFORMANCE.md, Leaderboard). Anything
else, or an answer that is not fresh (the first request, a failing database), goes
through Flask and `cached_json`, which computes it in the request, one thread at a time.
While the database cannot be reached (PostgreSQL restarting, a locked SQLite file), an
answer computed before is served on, marked `database_down_since` (when this process
first failed to reach it): the pages keep their last data under a visible banner, and
go on by themselves when it is back (GAME.md §9).
An answer polled less often than it would be refreshed (`/api/history`, every 3 s) asks
for no refresher (`keep_fresh=False`): it is computed on demand, at most once per TTL.
"""

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import sqlalchemy as sa
from flask import Flask, Response, current_app, json

log = logging.getLogger(__name__)

IDLE_SECONDS = 5.0  # a refresher stops after this long without a request for its answer
GRACE_SECONDS = 2.0  # an answer its refresher keeps is served this long past its age

_lock = threading.Lock()
_down: dict[str, float] = {}  # "since": when this process found the database unreachable


def down_since() -> float | None:
    """When this process found the database unreachable (wall time), or None while it is up."""
    return _down.get("since")


def _unreachable(exc: Exception) -> bool:
    """Whether `exc` says the database cannot be reached (not a bad query)."""
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)


class Answer(NamedTuple):
    """One cached answer: when it was computed (monotonic), its bytes, their ETag."""

    at: float
    body: bytes
    etag: str


class LiveCache:
    """The answers of one app, and which keys a refresher thread keeps fresh."""

    def __init__(self, app: Flask):
        """Empty; `answers` is also `app.extensions["game_live_cache"]` (tests clear it)."""
        self.app = app
        self.answers: dict[str, Answer] = app.extensions.setdefault("game_live_cache", {})
        self.asked: dict[str, float] = {}
        self.computing: set[str] = set()
        self.refreshing: set[str] = set()

    def ttl(self) -> float:
        """LIVE_CACHE_SECONDS, read at each use (0: no caching at all)."""
        return float(self.app.config.get("LIVE_CACHE_SECONDS", 0.5))

    def fresh(self, key: str) -> Answer | None:
        """The answer to `key` if it is fresh enough to serve as it is (and note the ask)."""
        now = time.monotonic()
        self.asked[key] = now
        answer, ttl = self.answers.get(key), self.ttl()
        if answer is None or ttl <= 0:
            return None
        kept = key in self.refreshing and now - answer.at < ttl + GRACE_SECONDS
        return answer if kept or now - answer.at < ttl else None

    def get(self, key: str, compute: Callable[[], Any], keep_fresh: bool = True) -> Answer:
        """A fresh answer, else one computed here (one thread at a time: while one thread
        computes a stale answer again, the others get the stale one); with `keep_fresh`,
        a refresher thread recomputes it from then on."""
        answer = self.fresh(key)
        if answer is not None:
            return answer
        with _lock:
            answer = self.answers.get(key)
            mine = key not in self.computing
            if mine:
                self.computing.add(key)
        if answer is not None and not mine:
            return answer
        try:
            answer = self.store(key, compute())
            _down.pop("since", None)
        except Exception as exc:
            stale = self.answers.get(key)
            if stale is None or not _unreachable(exc):
                raise
            return self._stale(stale)
        finally:
            if mine:
                with _lock:
                    self.computing.discard(key)
        if keep_fresh:
            self._keep_fresh(key, compute)
        return answer

    def _stale(self, answer: Answer) -> Answer:
        """`answer` marked with since when the database is down (its last data, bannered)."""
        since = _down.setdefault("since", time.time())
        data = json.loads(answer.body)
        if isinstance(data, dict):
            data["database_down_since"] = since
        body = json.dumps(data).encode()
        return Answer(answer.at, body, hashlib.sha1(body).hexdigest())

    def store(self, key: str, data: Any) -> Answer:
        """Serialise `data` once: its bytes and ETag become the answer to `key`."""
        body = json.dumps(data).encode()
        answer = Answer(time.monotonic(), body, hashlib.sha1(body).hexdigest())
        self.answers[key] = answer
        return answer

    def _keep_fresh(self, key: str, compute: Callable[[], Any]) -> None:
        """Start the refresher of `key` unless it runs (or caching is off)."""
        if self.ttl() <= 0:
            return
        with _lock:
            if key in self.refreshing:
                return
            self.refreshing.add(key)
        thread = threading.Thread(
            target=self._refresh, args=(key, compute), name=f"refresh-{key}", daemon=True
        )
        thread.start()

    def _refresh(self, key: str, compute: Callable[[], Any]) -> None:
        """Recompute `key` every LIVE_CACHE_SECONDS while it is asked for; stop on an error
        (the next request computes it, and shows the error)."""
        try:
            while self.ttl() > 0 and time.monotonic() - self.asked.get(key, 0) < IDLE_SECONDS:
                time.sleep(self.ttl())
                with self.app.app_context():
                    self.store(key, compute())
        except Exception as exc:  # the database went away: the requests will say so
            if _unreachable(exc):
                _down.setdefault("since", time.time())
            log.warning("live cache refresh stopped key=%s error=%s", key, type(exc).__name__)
        finally:
            with _lock:
                self.refreshing.discard(key)


def live_cache(app: Flask) -> LiveCache:
    """The app's LiveCache (made on first use)."""
    cache = app.extensions.get("game_live_cache_state")
    if cache is None:
        with _lock:
            cache = app.extensions.setdefault("game_live_cache_state", LiveCache(app))
    return cache


def cached_json(key: str, compute: Callable[[], Any], keep_fresh: bool = True) -> Response:
    """The JSON of `compute()` from the current app's cache (see `LiveCache.get`)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    answer = live_cache(app).get(key, compute, keep_fresh)
    response = Response(answer.body, mimetype="application/json")
    response.set_etag(answer.etag)
    return response


def fast_answers(
    app: Flask, routes: dict[str, str], headers: Iterable[tuple[str, str]]
) -> WSGIApplication:
    """Wrap `app.wsgi_app`: a GET of a path in `routes` (path -> cache key) whose answer is
    fresh is answered from memory with `headers` beside the JSON's own (or a 304 for a
    matching If-None-Match); every other request goes on to Flask."""
    inner, cache, extra = app.wsgi_app, live_cache(app), list(headers)

    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        key = routes.get(environ.get("PATH_INFO", ""))
        answer = None
        if key is not None and environ.get("REQUEST_METHOD") == "GET":
            answer = cache.fresh(key)
        if answer is None:
            return inner(environ, start_response)
        etag = f'"{answer.etag}"'
        if etag in environ.get("HTTP_IF_NONE_MATCH", ""):
            start_response("304 NOT MODIFIED", [("ETag", etag), *extra])
            return []
        own = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(answer.body))),
            ("ETag", etag),
        ]
        start_response("200 OK", own + extra)
        return [answer.body]

    return wsgi
