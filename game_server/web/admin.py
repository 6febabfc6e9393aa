"""The instructor page (`/admin`): log in with the instructor token, then control the game.

Every action is a POST from a logged-in instructor carrying the session's CSRF token
(`auth.admin_session_required`), goes through `control.py`, `play/teams.py` or
`storage/teams.py` (the same code as the CLI) and is logged with who (client address) and
when in `control_log`. GET never changes anything.
"""

import logging
import time

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from game_server.common.team_names import looks_like_a_name
from game_server.play import teams as registration
from game_server.storage import control, health, queries, skips, standings, teams
from game_server.web.auth import (
    Refused,
    admin_logged_in,
    admin_session_required,
    admin_token_attempt,
    client,
    csrf_required,
    csrf_token,
)
from game_server.web.db import engine
from game_server.web.sessions import end_admin_sessions, open_admin_session

log = logging.getLogger(__name__)

admin = Blueprint("admin", __name__, url_prefix="/admin")

NO_TOKEN = "the instructor page is off: start the server with GAME_ADMIN_TOKEN set"
FIELD_MAX = 200  # the longest form value stored (a team's model name; URLs are shorter)


def actor() -> str:
    """Who acts, as the control log records it."""
    return f"admin:{client()}"


@admin.errorhandler(Refused)
def refused(exc: Refused) -> ResponseReturnValue:
    """A form the checks refused: the page again, with the reason."""
    return render_template("admin.html", error=exc.message, **page()), exc.status, exc.headers


def page() -> dict:
    """What the page shows: the game, the teams, the control log (when logged in)."""
    values = {"csrf": csrf_token(), "enabled": admin_token_configured()}
    values["logged_in"] = admin_logged_in()
    if values["logged_in"]:
        with engine().connect() as conn:
            clock = values["clock"] = standings.game_clock(conn)
            values["teams"] = teams.list_teams(conn)
            if clock["state"] in health.PROBED_STATES:  # who the room waits for
                values["not_ready"] = health.not_ready(conn)
            values["log"] = queries.control_log_recent(conn, 30)
            values["skips"] = skips.summary(conn, time.time())  # overloaded: what to do
        values["actions"] = control.ACTIONS
        values["protocols"] = ("native", "mlflow", "openinference")
    return values


def admin_token_configured() -> bool:
    """Whether an instructor token is configured at all."""
    return bool(current_app.config.get("ADMIN_TOKEN"))


@admin.get("/")
@admin.get("")
def index() -> ResponseReturnValue:
    """The login form, or the controls."""
    new_token = session.pop("new_token", None)  # shown once, right after adding a team
    return render_template("admin.html", new_token=new_token, error=None, **page())


@admin.post("/login")
@csrf_required
def login() -> ResponseReturnValue:
    """Check the instructor token (constant time) and open a session."""
    if not admin_token_configured():
        return render_template("admin.html", error=NO_TOKEN, **page()), 403
    if not admin_token_attempt(request.form.get("token", "").strip()):
        log.warning("admin login 401 client=%s", client())
        return render_template("admin.html", error="wrong instructor token", **page()), 401
    open_admin_session()
    csrf_token()  # a fresh CSRF token for the new session
    log.info("admin login client=%s", client())
    return redirect(url_for("admin.index"))


@admin.post("/logout")
@admin_session_required
def logout() -> ResponseReturnValue:
    """End the instructor's sessions: this one and every copy of any (in every worker)."""
    end_admin_sessions()
    log.info("admin logout client=%s (every instructor session ended)", client())
    return redirect(url_for("admin.index"))


@admin.post("/actions/<action>")
@admin_session_required
def act(action: str) -> ResponseReturnValue:
    """One game control (start, pause, resume, next-phase, freeze, unfreeze, finish)."""
    if action not in control.ACTIONS:
        flash(f"unknown action {action[:40]!r}", "error")
        return redirect(url_for("admin.index"))
    try:
        row = control.apply(engine(), action, actor())
    except control.ControlError as exc:
        flash(str(exc), "error")
    else:
        log.info("admin action=%s client=%s state=%s", action, client(), row.state)
        flash(f"{action}: the game is {row.state}", "ok")
    return redirect(url_for("admin.index"))


@admin.post("/teams")
@admin_session_required
def add_team() -> ResponseReturnValue:
    """Register a team; its token is shown once on the next page."""
    name, url = form_text("name"), form_text("url")
    protocol = form_text("protocol") or "native"
    model = form_text("model") or None
    try:
        token = registration.add_team(engine(), name, url, protocol, model)
    except teams.TeamError as e:
        record("add-team", False, f"team={name[:40]!r} {e}")
        flash(str(e), "error")
        return redirect(url_for("admin.index"))
    record("add-team", True, f"team={name!r} url={url}")
    session["new_token"] = {"team": name, "token": token}
    return redirect(url_for("admin.index"))


@admin.post("/teams/<name>/<verb>")
@admin_session_required
def set_active(name: str, verb: str) -> ResponseReturnValue:
    """Disable (or enable again) a team."""
    if verb not in ("disable", "enable"):
        flash(f"unknown team action {verb[:20]!r}", "error")
        return redirect(url_for("admin.index"))
    if not looks_like_a_name(name):  # NUL would reach the database (a 500 on PostgreSQL)
        flash(f"no team called {name[:40]!r}", "error")
        return redirect(url_for("admin.index"))
    try:
        teams.set_active(engine(), name, verb == "enable")
    except teams.TeamError as exc:
        record(f"{verb}-team", False, str(exc))
        flash(str(exc), "error")
    else:
        record(f"{verb}-team", True, f"team={name!r}")
        flash(f"team {name} {verb}d", "ok")
    return redirect(url_for("admin.index"))


def form_text(field: str) -> str:
    """A form field, stripped; Refused (400) when it is too long or holds control characters.

    Checked here, at the edge: the database refuses NUL and over-long values with an error.
    """
    value = request.form.get(field, "").strip()
    if len(value) > FIELD_MAX or not value.isprintable():
        raise Refused(400, f"the field {field} is over {FIELD_MAX} characters or not printable")
    return value


def record(action: str, ok: bool, detail: str) -> None:
    """Log a team action in control_log (who and when) and at INFO."""
    with engine().begin() as conn:
        control.log_control(conn, action, actor(), ok, None, None, detail[:500])
    log.info("admin action=%s ok=%s client=%s detail=%s", action, ok, client(), detail)
