"""The game database of the web app: one engine per app, found from the request."""

import sqlalchemy as sa
from flask import Flask, current_app

from game_server.storage import database as storage


def init_app(app: Flask) -> sa.Engine:
    """Open the app's engine: one connection pool for every request of this app."""
    app.extensions["game_engine"] = storage.make_engine(app.config["DATABASE_URL"])
    return app.extensions["game_engine"]


def engine() -> sa.Engine:
    """The current app's database engine."""
    return current_app.extensions["game_engine"]
