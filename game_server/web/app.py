"""`create_app` builds the Flask app: config, the database, the blueprints, security headers.

Config comes from defaults, then the settings of `APP_SETTINGS` (`game_server.common.settings`:
`GAME_DATABASE_URL`, `GAME_ADMIN_TOKEN`, `GAME_SECRET_KEY`, `GAME_SLIDES_DIR`), then the
dict tests pass. No app is built at import time.
"""

import logging
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from game_server.common import settings
from game_server.common.logs import first_line
from game_server.storage import database
from game_server.web import db
from game_server.web.admin import admin
from game_server.web.api import api
from game_server.web.api_admin import api_admin
from game_server.web.cache import fast_answers
from game_server.web.pages import pages

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parents[1]  # game_server/

# Scripts only from our own files; Plotly injects its own CSS, hence inline styles.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# The reveal.js deck is our own static build and starts itself with an inline script.
SLIDES_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; object-src 'none'; frame-ancestors 'self'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
LIVE_ROUTES = {"/api/leaderboard": "leaderboard", "/api/history": "history"}  # cache keys
# The app's config keys read from the environment (docs/SETTINGS.md); every other key is
# the code's own (DEFAULTS) or a test's.
APP_SETTINGS: dict[str, settings.Setting[Any]] = {
    "DATABASE_URL": settings.DATABASE_URL,
    "ADMIN_TOKEN": settings.ADMIN_TOKEN,
    "SECRET_KEY": settings.SECRET_KEY,
    "SLIDES_DIR": settings.SLIDES_DIR,
}
DEFAULTS = {
    "DATABASE_URL": None,
    "JSON_SORT_KEYS": False,
    "ADMIN_TOKEN": None,
    "SECRET_KEY": None,
    "SLIDES_DIR": None,
    "MONITORING_CACHE_SECONDS": 5.0,
    "LIVE_CACHE_SECONDS": 0.5,
    # Requests per client to the endpoints that cost a query or a computation: (per
    # second, burst). Generous, because behind an SSH tunnel or a proxy every browser
    # has the same address: a team page polls two of them every 2 s, monitoring every 5 s.
    "RATE_LIMITS": {"teams": (20, 60), "monitoring": (2, 20), "feedback": (10, 30)},
    # Nothing the game server takes is big (a form, a token): a bigger body is a 413, and
    # `serve` tells waitress the same so that it refuses one before reading it.
    "MAX_CONTENT_LENGTH": 64 * 1024,
    # An instructor session lasts a workshop day (Flask's default is 31 days).
    "PERMANENT_SESSION_LIFETIME": timedelta(hours=12),
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Strict",
}


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: config, one database engine per app, the blueprints."""
    app = Flask(
        __name__,
        static_folder=str(PACKAGE / "static"),
        template_folder=str(PACKAGE / "templates"),
    )
    app.config.from_mapping(DEFAULTS)
    app.config.from_mapping({key: settings.get(each) for key, each in APP_SETTINGS.items()})
    if test_config:
        app.config.from_mapping(test_config)
    check_config(app.config)
    engine = db.init_app(app)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = shared_secret_key(engine)
    for blueprint in (api, api_admin, pages, admin):
        app.register_blueprint(blueprint)
    app.before_request(refuse_big_bodies)
    app.after_request(finish_response)
    # Polled by every open page: a fresh answer is served from memory, before Flask routes.
    app.wsgi_app = fast_answers(app, LIVE_ROUTES, SECURITY_HEADERS)  # type: ignore[method-assign,assignment]
    return app


def refuse_big_bodies() -> None:
    """413 for a body over MAX_CONTENT_LENGTH, before any view (even one that reads none)."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if limit is not None and (request.content_length or 0) > limit:
        log.warning("body refused client=%s bytes=%s", request.remote_addr, request.content_length)
        raise RequestEntityTooLarge(f"the body is over {limit} bytes")


# A setting the app refuses to start with; the message is one line naming the variable.
ConfigError = settings.SettingError


def check_settings() -> None:
    """The app's settings from the environment, checked without building the app (`run`
    checks them before it starts anything): a bad one is a ConfigError."""
    check_config({key: settings.get(each) for key, each in APP_SETTINGS.items()})


def check_config(config: Mapping[str, Any]) -> None:
    """Refuse an instructor token that is set but short, wherever it came from (a test's
    dict too), by the setting's own rule (ConfigError)."""
    token = config.get("ADMIN_TOKEN")
    if token:
        settings.check(settings.ADMIN_TOKEN, str(token))


def shared_secret_key(engine: sa.Engine) -> str:
    """The session key every worker shares: stored once in the game database."""
    try:
        return database.shared_setting(engine, "secret_key", lambda: secrets.token_hex(32))
    except sa.exc.SQLAlchemyError as exc:
        # Without the database nothing works anyway; instructor sessions then last as
        # long as this process (the error is logged, the pages answer 503).
        log.warning("secret key not shared error=%s", first_line(exc))
        return secrets.token_hex(32)


def finish_response(response: Response) -> Response:
    """Security headers on every response, and one DEBUG line per request."""
    slides = request.path.startswith("/slides")
    response.headers.setdefault("Content-Security-Policy", SLIDES_CSP if slides else CSP)
    for name, value in SECURITY_HEADERS[1:]:
        response.headers[name] = value
    log.debug(
        "request method=%s path=%s status=%s client=%s",
        request.method,
        request.path,
        response.status_code,
        request.remote_addr,
    )
    return response
