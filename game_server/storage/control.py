"""Game control: the state transitions shared by the CLI, the admin page and the game clock.

The database is the only shared state, so whoever issues an action (the CLI, the admin
page in a web worker, the game loop's clock) writes it as a conditional update of the
game row (`games.change`) and logs it with who and when in `control_log`; the running
game loop polls the game row and follows.

    lobby --start--> running <--pause/resume--> paused
    running|paused --next-phase--> the next phase (finished after the last one)
    lobby|running|paused --finish--> finished
    running|paused: freeze / unfreeze the public leaderboard
"""

import getpass
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from game_server.storage import clock, games
from game_server.storage.clock import PhaseClock
from game_server.storage.games import GameRow
from game_server.storage.schema import control_log
from game_server.storage.standings import leaderboard_teams

log = logging.getLogger(__name__)

# A write that finds only the clock moved (the loop's checkpoint) is tried again.
CHANGE_ATTEMPTS = 3

# The game row's new values, and a detail for the control log.
Change = tuple[dict[str, Any], str]


class ControlError(ValueError):
    """An action that does not apply to the game's current state (one-line message)."""


def default_actor(via: str = "cli") -> str:
    """Who issues actions from this process, e.g. `cli:alice@workshop-server`."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in some containers
        user = "unknown"
    return f"{via}:{user}@{socket.gethostname()}"


def log_control(
    conn: sa.Connection,
    action: str,
    actor: str,
    ok: bool,
    from_state: str | None,
    to_state: str | None,
    detail: str = "",
) -> None:
    """Record one control action (or a clock phase change) with who and when."""
    conn.execute(
        control_log.insert().values(
            at=time.time(),
            action=action,
            actor=actor[:200],
            ok=ok,
            from_state=from_state,
            to_state=to_state,
            detail=detail,
        )
    )


# --- the transitions: each checks the game row as read and says what changes ----------


def _require(verb: str, g: GameRow, states: tuple[str, ...], expected: str) -> None:
    """ControlError unless the game is in one of `states`."""
    if g.state not in states:
        raise ControlError(f"cannot {verb}: the game is {g.state}, not {expected}")


def _finished(g: GameRow, now: float) -> dict[str, Any]:
    """The update that ends the game; finishing reveals the real standings."""
    return {
        "state": "finished",
        **PhaseClock.of(g).stop(now).columns(),
        "finished_at": now,
        "frozen": False,
        "frozen_board": None,
    }


def _start(conn: sa.Connection, g: GameRow, now: float) -> Change:
    """Start the first phase."""
    _require("start", g, ("lobby",), "in the lobby")
    if not games.phase_list(conn):
        raise ControlError("cannot start: the game has no phases (check the game file)")
    values = {"state": "running", "phase_index": 0, "started_at": now}
    return {**values, **clock.new_phase(now).columns()}, "phase=0"


def _pause(conn: sa.Connection, g: GameRow, now: float) -> Change:
    """Stop the phase clock (and with it the schedule)."""
    _require("pause", g, ("running",), "running")
    return {"state": "paused", **PhaseClock.of(g).stop(now).columns()}, ""


def _resume(conn: sa.Connection, g: GameRow, now: float) -> Change:
    """Run the phase clock again."""
    _require("resume", g, ("paused",), "paused")
    return {"state": "running", **PhaseClock.of(g).run(now).columns()}, ""


def _next_phase(conn: sa.Connection, g: GameRow, now: float) -> Change:
    """The next phase from its start (paused if the game is); after the last, the end."""
    _require("advance", g, ("running", "paused"), "running or paused")
    nxt = g.phase_index + 1
    if nxt >= len(games.phase_list(conn)):
        return _finished(g, now), f"phase {g.phase_index} was the last"
    started = now if g.state == "running" else None
    return {"phase_index": nxt, **clock.new_phase(started).columns()}, f"phase={nxt}"


def _freeze(conn: sa.Connection, g: GameRow, now: float) -> Change:
    """Keep the public standings as they are now, until unfrozen or finished."""
    _require("freeze", g, ("running", "paused"), "running or paused")
    if g.frozen:
        raise ControlError("cannot freeze: the leaderboard is frozen already")
    return {"frozen": True, "frozen_at": now, "frozen_board": leaderboard_teams(conn)}, ""


def _unfreeze(conn: sa.Connection, g: GameRow, now: float) -> Change:
    """Show the live standings again."""
    if not g.frozen:
        raise ControlError("cannot unfreeze: the leaderboard is not frozen")
    return {"frozen": False, "frozen_at": None, "frozen_board": None}, ""


def _finish(conn: sa.Connection, g: GameRow, now: float) -> Change:
    """End the game, from any state but finished."""
    if g.state == "finished":
        raise ControlError("cannot finish: the game is finished already")
    return _finished(g, now), ""


TRANSITIONS: dict[str, Callable[[sa.Connection, GameRow, float], Change]] = {
    "start": _start,
    "pause": _pause,
    "resume": _resume,
    "next-phase": _next_phase,
    "freeze": _freeze,
    "unfreeze": _unfreeze,
    "finish": _finish,
}
ACTIONS = tuple(TRANSITIONS)


def _transition(conn: sa.Connection, action: str, g: GameRow, now: float) -> Change:
    """The update for `action` from game row `g`, and a detail; ControlError if invalid."""
    transition = TRANSITIONS.get(action)
    if transition is None:
        raise ControlError(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
    return transition(conn, g, now)


def _control_state(g: GameRow) -> tuple[str, int, bool]:
    """What an action was decided on: state, phase and freeze (not the clock)."""
    return g.state, g.phase_index, bool(g.frozen)


def _write(conn: sa.Connection, action: str, seen: GameRow, now: float) -> tuple[GameRow, str]:
    """Write `action` decided on the row `seen`; the new row and the detail. ControlError.

    When only the clock moved meanwhile (the loop's checkpoint), the action is computed
    again from the fresh clock; when another action landed, the instructor decides again.
    """
    g = seen
    for _ in range(CHANGE_ATTEMPTS):
        values, detail = _transition(conn, action, g, now)
        if games.change(conn, g, values):
            return games.game_row(conn), detail
        g = games.game_row(conn)
        if _control_state(g) != _control_state(seen):
            break
    raise ControlError(f"cannot {action}: the game changed meanwhile; try again")


def apply(engine: sa.Engine, action: str, actor: str) -> GameRow:
    """Apply one action as a conditional update; the new game row. ControlError if refused.

    The update only lands when the row is still as read (state, phase, freeze and clock),
    so two instructors (or the clock) acting at once cannot both win.
    """
    now = time.time()
    try:
        with engine.begin() as conn:
            g = games.game_row(conn)
            new, detail = _write(conn, action, g, now)
            log_control(conn, action, actor, True, g.state, new.state, detail)
    except ControlError as exc:
        with engine.begin() as conn:  # the refusal is logged too, in its own transaction
            log_control(conn, action, actor, False, g.state, None, str(exc))
        log.warning("control refused action=%s actor=%s reason=%s", action, actor, exc)
        raise
    log.info(
        "control action=%s actor=%s from=%s to=%s phase=%s detail=%s",
        action,
        actor,
        g.state,
        new.state,
        new.phase_index,
        detail,
    )
    return new


def advance_by_clock(engine: sa.Engine, phase_index: int, duration: float) -> GameRow | None:
    """Move to the next phase (or finish) when `phase_index` ran its `duration`.

    Every shard's game loop calls this at the same moment; the update is conditional on
    the game row being as read, so it lands once (the others find the phase moved on)
    and an instructor's action issued meanwhile wins. Returns the new row, or None when
    nothing changed.
    """
    now = time.time()
    with engine.begin() as conn:
        g = games.game_row(conn)
        if g.state != "running" or g.phase_index != phase_index:
            return None
        if PhaseClock.of(g).at(now) < duration - 0.01:
            return None
        if phase_index + 1 >= len(games.phase_list(conn)):
            values, detail = _finished(g, now), "last phase over"
        else:
            values = {"phase_index": phase_index + 1, **clock.new_phase(now).columns()}
            detail = f"phase={phase_index + 1}"
        if not games.change(conn, g, values):
            return None
        new = games.game_row(conn)
        log_control(conn, "phase-over", "clock", True, "running", new.state, detail)
    return new
