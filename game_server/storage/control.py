"""Game control: the state transitions shared by the CLI, the admin page and the game clock.

The database is the only shared state, so whoever issues an action (the CLI, the admin
page in a web worker, the game loop's clock) writes it as a conditional update
(`UPDATE games ... WHERE state = <expected>`) and logs it with who and when in
`control_log`; the running game loop polls the game row and follows.

    lobby --start--> running <--pause/resume--> paused
    running|paused --next-phase--> the next phase (finished after the last one)
    lobby|running|paused --finish--> finished
    running|paused: freeze / unfreeze the public leaderboard
"""

import getpass
import logging
import socket
import time

import sqlalchemy as sa

from game_server.storage import database as storage
from game_server.storage.database import games

log = logging.getLogger(__name__)

ACTIONS = ("start", "pause", "resume", "next-phase", "freeze", "unfreeze", "finish")


class ControlError(ValueError):
    """An action that does not apply to the game's current state (one-line message)."""


def default_actor(via: str = "cli") -> str:
    """Who issues actions from this process, e.g. `cli:alice@workshop-server`."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in some containers
        user = "unknown"
    return f"{via}:{user}@{socket.gethostname()}"


def _elapsed_now(now: float):
    """SQL for the phase time run so far, folding the running stretch in."""
    return games.c.phase_elapsed + sa.func.coalesce(now - games.c.phase_resumed_at, 0.0)


def _transition(conn: sa.Connection, action: str, g, now: float) -> tuple[dict, str]:
    """The update for `action` from game row `g`, and a detail; ControlError if invalid."""
    state = g["state"]
    n_phases = len(storage.phase_list(conn))
    if action == "start":
        if state != "lobby":
            raise ControlError(f"cannot start: the game is {state}, not in the lobby")
        if n_phases == 0:
            raise ControlError("cannot start: the game has no phases (check the game file)")
        return {
            "state": "running",
            "phase_index": 0,
            "phase_elapsed": 0.0,
            "phase_resumed_at": now,
            "started_at": now,
        }, "phase=0"
    if action == "pause":
        if state != "running":
            raise ControlError(f"cannot pause: the game is {state}, not running")
        return {
            "state": "paused",
            "phase_elapsed": _elapsed_now(now),
            "phase_resumed_at": None,
        }, ""
    if action == "resume":
        if state != "paused":
            raise ControlError(f"cannot resume: the game is {state}, not paused")
        return {"state": "running", "phase_resumed_at": now}, ""
    if action == "next-phase":
        if state not in ("running", "paused"):
            raise ControlError(f"cannot advance: the game is {state}, not running or paused")
        nxt = g["phase_index"] + 1
        if nxt >= n_phases:
            return _finish(now), f"phase {g['phase_index']} was the last"
        return {
            "phase_index": nxt,
            "phase_elapsed": 0.0,
            "phase_resumed_at": now if state == "running" else None,
        }, f"phase={nxt}"
    if action == "freeze":
        if state not in ("running", "paused"):
            raise ControlError(f"cannot freeze: the game is {state}, not running or paused")
        if g["frozen"]:
            raise ControlError("cannot freeze: the leaderboard is frozen already")
        snapshot = storage.leaderboard_teams(conn)
        return {"frozen": True, "frozen_at": now, "frozen_board": snapshot}, ""
    if action == "unfreeze":
        if not g["frozen"]:
            raise ControlError("cannot unfreeze: the leaderboard is not frozen")
        return {"frozen": False, "frozen_at": None, "frozen_board": None}, ""
    if action == "finish":
        if state == "finished":
            raise ControlError("cannot finish: the game is finished already")
        return _finish(now), ""
    raise ControlError(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")


def _finish(now: float) -> dict:
    """The update that ends the game; finishing reveals the real standings."""
    return {
        "state": "finished",
        "phase_elapsed": _elapsed_now(now),
        "phase_resumed_at": None,
        "finished_at": now,
        "frozen": False,
        "frozen_board": None,
    }


def apply(engine: sa.Engine, action: str, actor: str) -> dict:
    """Apply one action as a conditional update; the new game row. ControlError if refused.

    The update only lands when the row is still as read (state, phase and frozen flag),
    so two instructors (or the clock) acting at once cannot both win.
    """
    now = time.time()
    try:
        with engine.begin() as conn:
            g = storage.game_row(conn)
            values, detail = _transition(conn, action, g, now)
            done = conn.execute(
                games.update()
                .where(
                    games.c.id == storage.GAME_ID,
                    games.c.state == g["state"],
                    games.c.phase_index == g["phase_index"],
                    games.c.frozen == g["frozen"],
                )
                .values(**values)
            ).rowcount
            if not done:
                raise ControlError(f"cannot {action}: the game changed meanwhile; try again")
            new = storage.game_row(conn)
            storage.log_control(conn, action, actor, True, g["state"], new["state"], detail)
    except ControlError as exc:
        with engine.begin() as conn:  # the refusal is logged too, in its own transaction
            storage.log_control(conn, action, actor, False, g["state"], None, str(exc))
        log.warning("control refused action=%s actor=%s reason=%s", action, actor, exc)
        raise
    log.info(
        "control action=%s actor=%s from=%s to=%s phase=%s detail=%s",
        action,
        actor,
        g["state"],
        new["state"],
        new["phase_index"],
        detail,
    )
    return dict(new)


def advance_by_clock(engine: sa.Engine, phase_index: int, duration: float) -> dict | None:
    """Move to the next phase (or finish) when `phase_index` ran its `duration`.

    Only the running game loop calls this; the update is conditional on the game still
    running that phase, so an instructor's action issued meanwhile wins. Returns the new
    row, or None when nothing changed.
    """
    now = time.time()
    with engine.begin() as conn:
        g = storage.game_row(conn)
        if g["state"] != "running" or g["phase_index"] != phase_index:
            return None
        if storage.phase_elapsed(g, now) < duration - 0.01:
            return None
        n_phases = len(storage.phase_list(conn))
        if phase_index + 1 >= n_phases:
            values, detail = _finish(now), "last phase over"
        else:
            values = {"phase_index": phase_index + 1, "phase_elapsed": 0.0, "phase_resumed_at": now}
            detail = f"phase={phase_index + 1}"
        done = conn.execute(
            games.update()
            .where(games.c.state == "running", games.c.phase_index == phase_index)
            .values(**values)
        ).rowcount
        if not done:
            return None
        new = storage.game_row(conn)
        storage.log_control(conn, "phase-over", "clock", True, "running", new["state"], detail)
    return dict(new)
