"""The web app: `create_app` builds the Flask app (JSON API now, the pages later).

Config comes from defaults, then environment variables prefixed `GAME_` (e.g.
`GAME_DATABASE_URL`), then the dict tests pass. No app is built at import time.
"""

import sqlalchemy as sa
from flask import Flask, current_app

from game_server import storage


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: config, one database engine per app, the blueprints."""
    app = Flask(__name__)
    app.config.from_mapping(DATABASE_URL=None, JSON_SORT_KEYS=False)
    app.config.from_prefixed_env("GAME")
    if test_config:
        app.config.from_mapping(test_config)
    app.extensions["game_engine"] = storage.make_engine(app.config["DATABASE_URL"])

    from game_server.web.api import api

    app.register_blueprint(api)
    return app


def engine() -> sa.Engine:
    """The current app's database engine."""
    return current_app.extensions["game_engine"]
