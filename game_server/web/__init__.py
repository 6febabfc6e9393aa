"""The web app: `create_app` builds the Flask app (pages, instructor page, JSON API, slides).

Config comes from defaults, then environment variables prefixed `GAME_` (e.g.
`GAME_DATABASE_URL`, `GAME_ADMIN_TOKEN`, `GAME_SECRET_KEY`, `GAME_SLIDES_DIR`), then the
dict tests pass. No app is built at import time.

May import: `storage`, `scenario`, the registry and the pure rules of `play`, never the
game loop or the customer (the pages only read the database and write control actions).
"""

import logging
import secrets
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, current_app, request

from game_server.storage import database as storage

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parents[1]  # game_server/
ROOT = PACKAGE.parent  # the project root (a source checkout)

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


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: config, one database engine per app, the blueprints."""
    app = Flask(
        __name__,
        static_folder=str(PACKAGE / "static"),
        template_folder=str(PACKAGE / "templates"),
    )
    app.config.from_mapping(
        DATABASE_URL=None,
        JSON_SORT_KEYS=False,
        ADMIN_TOKEN=None,
        SECRET_KEY=None,
        SLIDES_DIR=None,
        MONITORING_CACHE_SECONDS=5.0,
        LIVE_CACHE_SECONDS=0.5,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    app.config.from_prefixed_env("GAME")
    if test_config:
        app.config.from_mapping(test_config)
    app.extensions["game_engine"] = storage.make_engine(app.config["DATABASE_URL"])
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = shared_secret_key(app.extensions["game_engine"])

    from game_server.web import api_pages  # noqa: F401  (adds its routes to `api`)
    from game_server.web.admin import admin
    from game_server.web.api import api
    from game_server.web.pages import pages

    app.register_blueprint(api)
    app.register_blueprint(pages)
    app.register_blueprint(admin)
    app.after_request(finish_response)
    return app


def shared_secret_key(engine: sa.Engine) -> str:
    """The session key every worker shares: stored once in the game database."""
    try:
        return storage.shared_setting(engine, "secret_key", lambda: secrets.token_hex(32))
    except sa.exc.SQLAlchemyError as exc:
        # Without the database nothing works anyway; instructor sessions then last as
        # long as this process (the error is logged, the pages answer 503).
        log.warning("secret key not shared error=%s", str(exc).splitlines()[0][:200])
        return secrets.token_hex(32)


def finish_response(response):
    """Security headers on every response, and one DEBUG line per request."""
    slides = request.path.startswith("/slides")
    response.headers.setdefault("Content-Security-Policy", SLIDES_CSP if slides else CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    log.debug(
        "request method=%s path=%s status=%s client=%s",
        request.method,
        request.path,
        response.status_code,
        request.remote_addr,
    )
    return response


def engine() -> sa.Engine:
    """The current app's database engine."""
    return current_app.extensions["game_engine"]
