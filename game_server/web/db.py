"""The game database of the web app: one engine per app, found from the request."""

import sqlalchemy as sa
from flask import Flask, current_app

from game_server.common.team_names import looks_like_a_name
from game_server.storage import database, queries


def init_app(app: Flask) -> sa.Engine:
    """Open the app's engine: one connection pool for every request of this app."""
    app.extensions["game_engine"] = database.make_engine(app.config["DATABASE_URL"])
    return app.extensions["game_engine"]


def engine() -> sa.Engine:
    """The current app's database engine."""
    return current_app.extensions["game_engine"]


def find_team(conn: sa.Connection, name: str) -> sa.RowMapping | None:
    """The team called `name` from a URL, or None; no query for a name no team can have.

    PostgreSQL refuses NUL in text (a 500 otherwise), so such a name is simply not found.
    """
    if not looks_like_a_name(name):
        return None
    return queries.team_by_name(conn, name)
