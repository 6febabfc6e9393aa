"""Who is asking: Bearer tokens, the instructor token, the client address, CSRF tokens."""

import hmac
import secrets

from flask import current_app, request, session


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def admin_token_ok(token: str | None) -> bool:
    """Whether `token` is the instructor token (constant time); never without one set."""
    expected = current_app.config.get("ADMIN_TOKEN")
    if not expected or not token:
        return False
    return hmac.compare_digest(token.encode(), str(expected).encode())


def client() -> str:
    """The client's address, for logs and the control log."""
    return request.remote_addr or "unknown"


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
