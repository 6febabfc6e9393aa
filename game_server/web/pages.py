"""The public pages: leaderboard (`/`), a team's page, monitoring; Plotly's JS; the deck.

The pages are HTML shells; their JavaScript (game_server/static/js/) polls the JSON API
and updates the page in place. Team-supplied strings reach the HTML only through Jinja's
autoescaping and the DOM only through `textContent`.
"""

import os
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, current_app, redirect, render_template, send_file, send_from_directory
from flask.typing import ResponseReturnValue

from game_server.storage import games
from game_server.web.db import engine, find_team

pages = Blueprint("pages", __name__)

ROOT = Path(__file__).resolve().parents[2]  # the project root (a source checkout)
# Plotly.js from npm, pinned and committed (`make plotly-js`): no CDN, no Node.js to install.
PLOTLY_JS = Path(__file__).resolve().parents[1] / "static" / "vendor" / "plotly.min.js"
PLOTLY_VERSION = "4.1.1"  # scripts/vendor/package.json's; a test checks the file says the same
YEAR = 365 * 24 * 3600
SLIDES_MISSING = "the slides are not built: run `make slides` (or set GAME_SLIDES_DIR)\n"


@pages.app_context_processor
def page_globals() -> dict:
    """Values every template uses."""
    return {"plotly_version": PLOTLY_VERSION, "game_name": game_name()}


@pages.get("/")
def leaderboard() -> ResponseReturnValue:
    """The live leaderboard (for the projector)."""
    return render_template("leaderboard.html")


@pages.get("/teams/<name>")
def team(name: str) -> ResponseReturnValue:
    """One team's page: its requests, accuracy and latency over time, failures."""
    with engine().connect() as conn:
        row = find_team(conn, name)
    if row is None:
        return render_template("not_found.html", what=f"no team called {name!r}"), 404
    return render_template("team.html", team=row["name"])


@pages.get("/monitoring")
def monitoring() -> ResponseReturnValue:
    """Feature distributions of recent requests against the training data, with drift."""
    return render_template("monitoring.html")


@pages.get("/static/vendor/plotly.min.js")
def plotly_js() -> ResponseReturnValue:
    """Plotly.js, served by the game itself (no CDN); cached for a year."""
    return send_file(PLOTLY_JS, mimetype="text/javascript", max_age=YEAR)


def game_name() -> str:
    """The game's name for the page title ("" before `game-server init`)."""
    try:
        with engine().connect() as conn:
            return games.game_row(conn).name
    except (games.NotInitialised, sa.exc.SQLAlchemyError):
        return ""  # the page still loads; its polls show what is wrong


def slides_dir() -> Path:
    """The built deck: GAME_SLIDES_DIR, else slides/build/ under the project root."""
    configured = current_app.config.get("SLIDES_DIR")
    return Path(configured) if configured else ROOT / "slides" / "build"


@pages.get("/slides")
def slides_root() -> ResponseReturnValue:
    """The deck lives under /slides/ (its files are relative)."""
    return redirect("/slides/", code=301)


@pages.get("/slides/")
@pages.get("/slides/<path:path>")
def slides(path: str = "index.html") -> ResponseReturnValue:
    """The workshop deck, when it has been built."""
    folder = slides_dir()
    if not (folder / "index.html").is_file():
        return SLIDES_MISSING, 404, {"Content-Type": "text/plain; charset=utf-8"}
    if path.endswith("/"):
        path += "index.html"
    return send_from_directory(os.fspath(folder), path)


@pages.app_errorhandler(games.NotInitialised)
def not_initialised(exc: games.NotInitialised) -> ResponseReturnValue:
    """No game in the database yet: a one-line hint (JSON for the API, HTML for pages)."""
    return render_template("not_found.html", what=str(exc)), 503
