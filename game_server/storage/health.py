"""Who is ready: the latest probe of each team's health route, before the game and while
paused (GAME.md §8). The game loop writes them; the board, the team pages and the
instructor page read them. Never results: a probe is not scored.
"""

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from game_server.storage.schema import team_health, teams

PROBED_STATES = ("lobby", "paused")  # the game's states in which teams are probed
FRESH_SECONDS = 10.0  # an older probe says nothing any more (the loop stopped probing)


def store(conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Replace the probe rows of the given teams (team_id, up, reason, status_code,
    checked_at): one row per team, so the table stays as small as the roster."""
    if not rows:
        return
    ids = [r["team_id"] for r in rows]
    conn.execute(team_health.delete().where(team_health.c.team_id.in_(ids)))
    conn.execute(team_health.insert(), list(rows))


def describe(reason: str | None, status_code: int | None) -> str | None:
    """Why a team is not up, in a few words: the reason, with the status that came back."""
    if reason in ("http_status", "redirect") and status_code is not None:
        return f"{reason} {status_code}"
    return reason


def fresh_by_name(conn: sa.Connection, now: float | None = None) -> dict[str, dict[str, Any]]:
    """{team name: {up, reason, checked_at}} of the probes younger than FRESH_SECONDS."""
    now = time.time() if now is None else now
    h = team_health.c
    rows = conn.execute(
        sa.select(teams.c.name, h.up, h.reason, h.status_code, h.checked_at)
        .join(teams, teams.c.id == h.team_id)
        .where(h.checked_at > now - FRESH_SECONDS)
    )
    return {
        r.name: {
            "up": bool(r.up),
            "reason": describe(r.reason, r.status_code),
            "checked_at": r.checked_at,
        }
        for r in rows
    }


def overlay(conn: sa.Connection, board: dict[str, Any], now: float | None = None) -> None:
    """In the lobby and while paused, set each team's `up` (and `up_reason`) on a
    leaderboard from its fresh probe; while running, `up` stays the results' (as stored)."""
    if board["game"]["state"] not in PROBED_STATES:
        return
    probes = fresh_by_name(conn, now)
    for row in board["teams"]:
        probe = probes.get(row["name"])
        if probe is not None:
            row["up"] = probe["up"]
            row["up_reason"] = probe["reason"]


def not_ready(conn: sa.Connection, now: float | None = None) -> list[dict[str, Any]]:
    """The active teams whose API is not up by its latest fresh probe: name and why."""
    probes = fresh_by_name(conn, now)
    active = conn.execute(sa.select(teams.c.name).where(teams.c.active).order_by(teams.c.name))
    out = []
    for (name,) in active:
        probe = probes.get(name)
        if probe is None:
            out.append({"name": name, "reason": "not probed yet"})
        elif not probe["up"]:
            out.append({"name": name, "reason": probe["reason"]})
    return out
