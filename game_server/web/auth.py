"""Who is asking: Bearer tokens, the instructor (session or token), the client, CSRF tokens.

Every instructor-only view says so with one decorator: `admin_session_required` (the
instructor page's forms) or `admin_token_required` (the instructor's JSON API). A refusal
is raised as `Refused`; the blueprint shows it its own way (the page, or JSON). Wrong
instructor tokens are limited per client (`ratelimit`), sessions checked against the
server's version (`sessions`).
"""

import functools
import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import current_app, g, request, session

from game_server.storage import teams
from game_server.web import ratelimit
from game_server.web.db import engine
from game_server.web.ratelimit import FailureLimit
from game_server.web.sessions import admin_session_ok

log = logging.getLogger(__name__)

CSRF_FAILED = "the form is stale or forged (CSRF token missing or wrong): reload /admin"
ADMIN_TOKEN_REQUIRED = "the instructor token is required: Authorization: Bearer <token>"
TOO_MANY = "too many wrong instructor tokens from this address: try again in {wait} s"


class Refused(Exception):
    """A request the instructor's checks refuse: the status, a one-line reason, headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def admin_token_ok(token: str | None) -> bool:
    """Whether `token` is the instructor token (constant time); never without one set."""
    expected = current_app.config.get("ADMIN_TOKEN")
    if not expected or not token:
        return False
    return hmac.compare_digest(as_bytes(token), as_bytes(str(expected)))


def as_bytes(text: str) -> bytes:
    """UTF-8, keeping what the environment could not decode (a token from os.environ)."""
    return text.encode("utf-8", "surrogateescape")


def login_limit() -> FailureLimit:
    """This app's count of failed instructor logins per client."""
    return current_app.extensions.setdefault("game_login_limit", FailureLimit())


def admin_token_attempt(token: str | None) -> bool:
    """Whether `token` is the instructor token; Refused (429) while this client has
    failed too often (a wrong token counts; a missing one is no guess).

    The right token is checked first and never refused: wrong guesses from the same
    address (every user of the server shares loopback) must not lock the instructor out.
    """
    if admin_token_ok(token):
        return True
    limit = login_limit()
    wait = limit.retry_after(client_key())
    if wait:
        log.warning(
            "admin login 429 client=%s path=%s retry_after=%d", client(), request.path, wait
        )
        raise Refused(429, TOO_MANY.format(wait=wait), {"Retry-After": str(wait)})
    if token:
        limit.failed(client_key())
    return False


def client() -> str:
    """The client's address, for logs and the control log."""
    return request.remote_addr or "unknown"


def client_key() -> str:
    """Whom an unauthenticated request is counted for: its address, loopback as one."""
    return ratelimit.client_key(request.remote_addr)


def request_team() -> sa.RowMapping | None:
    """The team whose token this request carries (Bearer), or None; asked once a request."""
    if "game_team" not in g:
        token = bearer_token()
        if token is None:
            g.game_team = None
        else:
            with engine().connect() as conn:
                g.game_team = teams.authenticate(conn, token)
    return g.game_team


def csrf_token() -> str:
    """This session's CSRF token (created on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_ok() -> bool:
    """Whether the POSTed form carries this session's CSRF token."""
    expected = session.get("csrf")
    given = request.form.get("csrf_token", "")
    return bool(expected) and hmac.compare_digest(given.encode(), str(expected).encode())


def admin_logged_in() -> bool:
    """Whether this session belongs to a logged-in instructor (of the current version)."""
    return admin_session_ok()


def require_csrf() -> None:
    """Refuse (400) a form that lacks this session's CSRF token."""
    if not csrf_ok():
        log.warning("admin csrf rejected client=%s path=%s", client(), request.path)
        raise Refused(400, CSRF_FAILED)


def csrf_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """A form view that needs this session's CSRF token (the login form)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        require_csrf()
        return view(*args, **kwargs)

    return wrapped


def admin_session_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """A form view of the instructor page: the CSRF token and a logged-in instructor."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        require_csrf()
        if not admin_logged_in():
            log.warning("admin 401 client=%s path=%s", client(), request.path)
            raise Refused(401, "log in first")
        return view(*args, **kwargs)

    return wrapped


def admin_token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """A view of the instructor's JSON API: `Authorization: Bearer <instructor token>`."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not admin_token_attempt(bearer_token()):
            log.warning("admin api 401 client=%s path=%s", client(), request.path)
            raise Refused(401, ADMIN_TOKEN_REQUIRED)
        return view(*args, **kwargs)

    return wrapped
