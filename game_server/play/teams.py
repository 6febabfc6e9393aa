"""Registering a team by play's rules, and the game's allow-list; the tables are storage's.

A team's name, Linux user, protocol and URL are checked here (the URL against the
allow-list, resolving names: `hosts.check_url`), before `storage.teams` stores it; the
DNS look-up happens outside any database transaction. The allow-list is the game file's
(loopback by default) plus what `game-server allow` added; the running game re-reads it
every second. A team's Linux user becomes the uid the customer expects on its loopback
port (`listeners`).
"""

import logging
import re

import sqlalchemy as sa

from game_server.common.team_names import NAME_RULE, name_ok
from game_server.play import hosts, listeners, protocols
from game_server.storage import teams as registry
from game_server.storage.teams import TeamError

log = logging.getLogger(__name__)

LINUX_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def check_name(name: str) -> None:
    """Raise TeamError unless `name` is a valid team name."""
    if not name_ok(name):
        raise TeamError(f"bad team name {name!r}: {NAME_RULE}")


def allowed_hosts(conn: sa.Connection) -> tuple[str, ...]:
    """The allow-list: the game file's, stored in the database (loopback by default), and
    the entries added since. The running game re-reads it every second."""
    listed = registry.game_hosts(conn) or hosts.DEFAULT_ALLOWED_HOSTS
    return listed + tuple(e for e in registry.added_hosts(conn) if e not in listed)


def allow_hosts(engine: sa.Engine, entries: list[str]) -> tuple[str, ...]:
    """Add host names, addresses or networks to the allow-list (kept apart from the game
    file's, so `game-server run` or `init` with the file keeps them); the whole list.
    TeamError (one line) for a malformed entry."""
    try:
        hosts.AllowList(entries)
    except ValueError as exc:
        raise TeamError(str(exc)) from None
    typed = [e.strip() for e in entries]
    registry.add_hosts(engine, typed)
    with engine.connect() as conn:
        whole = allowed_hosts(conn)
    log.info("allow-list extended added=%s allowed_hosts=%s", ",".join(typed), ",".join(whole))
    return whole


def add_team(
    engine: sa.Engine,
    name: str,
    url: str,
    protocol: str = "native",
    model: str | None = None,
    resolve: bool = True,
    user: str | None = None,
) -> str:
    """Register a team; returns its token (the only time it is seen). TeamError if refused.

    `user`: the team's Linux user on the game's server (`users create` gives it): the
    customer then sends to a loopback URL only when that user listens there (listeners.py).
    """
    check_name(name)
    if user is not None and not LINUX_USER.fullmatch(user):
        raise TeamError(f"bad Linux user name {user!r}")
    try:
        protocols.check_protocol(protocol, model)
    except ValueError as exc:
        raise TeamError(str(exc)) from None
    with engine.connect() as conn:
        allowed = allowed_hosts(conn)
    try:
        hosts.check_url(url, allowed, resolve=resolve)
    except ValueError as exc:
        raise TeamError(str(exc)) from None
    return registry.insert_team(engine, name, url, protocol, model, user)


def team_uids(conn: sa.Connection) -> dict[int, int]:
    """The teams' Linux users on this server, as uids by team id (a user it lacks: none)."""
    users = registry.team_users(conn)
    known = listeners.user_uids() if users else {}  # one read of the users for every team
    return {team_id: known[user] for team_id, user in users.items() if user in known}
