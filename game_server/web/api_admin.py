"""The instructor's JSON API (`/api/admin/...`): the control log and the game controls.

Every view takes `Authorization: Bearer <instructor token>` (`auth.admin_token_required`).
"""

import logging

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from game_server.storage import control, queries
from game_server.web.auth import admin_token_required, client
from game_server.web.db import engine
from game_server.web.jsonapi import BadRequest, int_arg, json_api

log = logging.getLogger(__name__)

api_admin = json_api(Blueprint("api_admin", __name__, url_prefix="/api/admin"))


@api_admin.get("/control-log")
@admin_token_required
def control_log() -> ResponseReturnValue:
    """The newest control actions (instructor token)."""
    limit = int_arg("limit", 50, 1, 500)
    with engine().connect() as conn:
        return jsonify(actions=queries.control_log_recent(conn, limit))


@api_admin.post("/actions/<action>")
@admin_token_required
def admin_action(action: str) -> ResponseReturnValue:
    """Apply one control action (instructor token); 409 when the state does not allow it."""
    if action not in control.ACTIONS:
        raise BadRequest(f"unknown action {action[:40]!r} (known: {', '.join(control.ACTIONS)})")
    try:
        row = control.apply(engine(), action, f"api:{client()}")
    except control.ControlError as exc:
        return jsonify(error=str(exc)), 409
    log.info("admin api action=%s client=%s state=%s", action, client(), row.state)
    return jsonify(state=row.state, phase_index=row.phase_index, frozen=row.frozen)
