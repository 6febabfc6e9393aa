"""Instructor sessions the server can end: a version in the game database, the token's digest.

A Flask session is a signed cookie: without a server-side check, a copied cookie works
until it expires, whatever the instructor does. So an instructor session holds the
sessions' version (stored in `web_settings`, shared by every worker: a logout writes a new
one, ending every instructor session at once) and a keyed digest of the instructor token
(a changed `GAME_ADMIN_TOKEN` ends them too; the token itself never goes in the cookie).
"""

import hashlib
import hmac
import secrets

import sqlalchemy as sa
from flask import current_app, session

from game_server.storage import database, schema
from game_server.web.db import engine

VERSION_KEY = "admin_session_version"


def new_version() -> str:
    """A fresh, unguessable sessions' version."""
    return secrets.token_hex(16)


def current_version() -> str:
    """The version every valid instructor session carries (created once)."""
    return database.shared_setting(engine(), VERSION_KEY, new_version)


def token_digest() -> str:
    """A digest of the configured instructor token, keyed with the app's secret key."""
    token = str(current_app.config.get("ADMIN_TOKEN") or "")
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def open_admin_session() -> None:
    """Make this session an instructor's, for PERMANENT_SESSION_LIFETIME at most."""
    session.clear()
    session.permanent = True  # the cookie expires with the signature's lifetime
    session["admin"] = {"version": current_version(), "token": token_digest()}


def admin_session_ok() -> bool:
    """Whether this session is an instructor's of the current version and token."""
    held = session.get("admin")
    if not isinstance(held, dict) or not current_app.config.get("ADMIN_TOKEN"):
        return False
    same_token = hmac.compare_digest(str(held.get("token", "")), token_digest())
    return same_token and hmac.compare_digest(str(held.get("version", "")), current_version())


def end_admin_sessions() -> None:
    """End every instructor session at once (in every worker): a new version."""
    current_version()  # the row exists from here on
    table = schema.web_settings
    with engine().begin() as conn:
        conn.execute(sa.update(table).where(table.c.key == VERSION_KEY).values(value=new_version()))
    session.clear()
