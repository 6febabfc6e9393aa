"""The team registry's tables: teams, their tokens (issued, rotated, checked) and the hosts
`game-server allow` added to the allow-list.

A team token is `secrets.token_urlsafe(32)` (256 random bits), shown once at registration
and stored only as its SHA-256 hex digest. A fast hash is right for a high-entropy token
(there is nothing to brute-force), and lets a request's token be found by its digest.

What a team's URL and protocol may be is play's rule: `play.teams.add_team` checks them,
then stores the team here (`insert_team`).
"""

import hashlib
import hmac
import json
import logging
import secrets
import time
from typing import Any

import sqlalchemy as sa

from game_server.storage import schema
from game_server.storage.games import game_row

log = logging.getLogger(__name__)

API_KEY_PURPOSE = b"workshop-game customer key v1"
TEAM_USER = "team_user:"  # + a team's id: its Linux user (web_settings), when it has one
ALLOWED_ADDED = "allowed_hosts_added"  # the entries `game-server allow` added (web_settings)


class TeamError(ValueError):
    """A registration that is refused; the message is one line for the instructor."""


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256 hex digest."""
    return hashlib.sha256(token.encode()).hexdigest()


def api_key(token_hash: str) -> str:
    """What the customer sends a team's API (`X-Game-Key`) to show it is the game.

    Made from the stored digest, so only the game (its private database) and the team (its
    token, in its `.env`) can make it: the starter refuses `/predict` without it, and no
    other user of the server can use the team's model (docs/SECURITY.md). The starter
    computes the same (participant_starter/modules/access.py; a test checks they agree).
    """
    return hmac.new(token_hash.encode(), API_KEY_PURPOSE, hashlib.sha256).hexdigest()


def game_hosts(conn: sa.Connection) -> tuple[str, ...]:
    """The game file's allow-list as stored with the game (empty when none is stored)."""
    settings = game_row(conn).settings or {}
    return tuple(settings.get("allowed_hosts") or ())


def added_hosts(conn: sa.Connection) -> tuple[str, ...]:
    """The entries `game-server allow` added to the game file's allow-list."""
    query = sa.select(schema.web_settings.c.value).where(schema.web_settings.c.key == ALLOWED_ADDED)
    value = conn.execute(query).scalar()
    return tuple(json.loads(value)) if value else ()


def add_hosts(engine: sa.Engine, entries: list[str]) -> None:
    """Add entries (already checked) to the allow-list's additions, kept apart from the game
    file's so `game-server run` or `init` with the file keeps them."""
    table = schema.web_settings
    with engine.begin() as conn:
        game_row(conn)  # NotInitialised with a hint when there is no game
        added = added_hosts(conn)
        added += tuple(e for e in dict.fromkeys(entries) if e not in added)
        conn.execute(table.delete().where(table.c.key == ALLOWED_ADDED))
        conn.execute(table.insert().values(key=ALLOWED_ADDED, value=json.dumps(added)))


def insert_team(
    engine: sa.Engine,
    name: str,
    url: str,
    protocol: str,
    model: str | None = None,
    user: str | None = None,
) -> str:
    """Store a team whose name, URL and protocol were checked; its token (seen only now).

    TeamError when a team of that name (in any case) exists already.
    """
    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        taken = conn.execute(
            sa.select(schema.teams.c.name).where(sa.func.lower(schema.teams.c.name) == name.lower())
        ).first()
        if taken:
            raise TeamError(f"a team called {taken[0]!r} exists already")
        added = conn.execute(
            schema.teams.insert().values(
                name=name,
                url=url,
                protocol=protocol,
                model=model,
                token_hash=hash_token(token),
                active=True,
                created_at=time.time(),
            )
        )
        if user is not None and added.inserted_primary_key is not None:
            key = f"{TEAM_USER}{added.inserted_primary_key[0]}"
            conn.execute(schema.web_settings.insert().values(key=key, value=user))
    log.info("team added team=%s url=%s protocol=%s user=%s", name, url, protocol, user)
    return token


def list_teams(conn: sa.Connection) -> list[dict[str, Any]]:
    """Every team (without its token hash), by name."""
    game_row(conn)  # NotInitialised with a hint when there is no game
    cols = [c for c in schema.teams.c if c.name != "token_hash"]
    rows = conn.execute(sa.select(*cols).order_by(schema.teams.c.name)).mappings()
    return [dict(r) for r in rows]


def set_active(engine: sa.Engine, name: str, active: bool) -> None:
    """Disable (or enable again) a team; it stops (or starts) receiving requests."""
    with engine.begin() as conn:
        game_row(conn)
        done = conn.execute(
            schema.teams.update()
            .where(schema.teams.c.name == name)
            .values(active=active, disabled_at=None if active else time.time())
        ).rowcount
    if not done:
        raise TeamError(f"no team called {name!r}")
    log.info("team %s team=%s", "enabled" if active else "disabled", name)


def rotate_token(engine: sa.Engine, name: str) -> str:
    """Give team `name` a new token (the old one stops working); returns it, seen only now."""
    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        game_row(conn)
        done = conn.execute(
            schema.teams.update()
            .where(schema.teams.c.name == name)
            .values(token_hash=hash_token(token))
        ).rowcount
    if not done:
        raise TeamError(f"no team called {name!r}")
    log.info("team token rotated team=%s", name)
    return token


def team_users(conn: sa.Connection) -> dict[int, str]:
    """The Linux user of each team that has one on this server, by team id."""
    table = schema.web_settings
    rows = conn.execute(sa.select(table).where(table.c.key.startswith(TEAM_USER))).all()
    ids = ((key[len(TEAM_USER) :], user) for key, user in rows)
    return {int(team_id): user for team_id, user in ids if team_id.isdigit()}


def active_teams(conn: sa.Connection) -> list[dict[str, Any]]:
    """The teams that receive requests, by id; with `key`, the API key the game sends it."""
    q = sa.select(schema.teams).where(schema.teams.c.active).order_by(schema.teams.c.id)
    rows = conn.execute(q).mappings()
    return [{**r, "key": api_key(r["token_hash"])} for r in rows]


def authenticate(conn: sa.Connection, token: str | None) -> sa.RowMapping | None:
    """The team whose token this is, or None."""
    if not token:
        return None
    digest = hash_token(token)
    row = (
        conn.execute(sa.select(schema.teams).where(schema.teams.c.token_hash == digest))
        .mappings()
        .first()
    )
    if row is None or not hmac.compare_digest(row["token_hash"], digest):
        return None
    return row
