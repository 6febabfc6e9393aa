"""Helpers for the engine's tests: a short game file, rounds to store, peeking team APIs."""

import asyncio
import dataclasses
import json
import time
from pathlib import Path

import sqlalchemy as sa
from team_apis import Handler, Request, response

from game_server.common.records import Result, Score
from game_server.play import loop as game
from game_server.scenario import gamefile
from game_server.storage import games, schema

FAST_GAME = Path(__file__).parent / "games" / "fast.toml"


def fast_game(**settings) -> gamefile.GameFile:
    """The tests' short game file, with `settings` overridden."""
    game = gamefile.load_game_file(FAST_GAME)
    if settings:
        game = dataclasses.replace(game, settings=dataclasses.replace(game.settings, **settings))
    return game


def next_seq(conn: sa.Connection) -> int:
    """The sequence number after the highest stored: where a test's own rounds go."""
    return int(conn.execute(sa.select(sa.func.max(schema.requests.c.seq))).scalar() or 0) + 1


def request_row(seq: int, phase_index: int = 0, label: int = 1, sent_at=None, delay=0.0):
    """The columns of one request, as the game loop stores it before sending."""
    sent_at = time.time() if sent_at is None else sent_at
    return {
        "seq": seq,
        "request_id": f"t-{seq:07d}",
        "phase_index": phase_index,
        "features": {"age": 30 + seq, "region": "north"},
        "oddities": [],
        "label": label,
        "p_default": 0.8 if label else 0.2,
        "oracle_points": 0.8,
        "baseline_points": 0.2 if label else 0.8,
        "sent_at": sent_at,
        "label_visible_at": sent_at + delay,
    }


def result(team_id: int, outcome: str, reason=None, pred=None, latency=10.0, status=200):
    """One scored result shaped like the customer's."""
    points = {"correct": 1, "wrong": 0, "failed": -1}[outcome]
    return Result(team_id, Score(outcome, reason, pred, points, status, None), latency)


def peeking(engine: sa.Engine, flip: bool = False) -> Handler:
    """A team API that knows the truth (it reads the label from the game database).

    With `flip` it answers the opposite: a team that is always wrong.
    """

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        rid = req.json()["id"]
        with engine.connect() as conn:
            label = conn.execute(
                sa.select(schema.requests.c.label).where(schema.requests.c.request_id == rid)
            ).scalar_one()
        writer.write(response(200, json.dumps({"pred": label ^ int(flip)}).encode()))

    return handle


async def play(g: game.Game, engine, until: str = "finished", limit: float = 15.0, during=None):
    """Run the loop until the game reaches state `until` (or `limit` s), then stop it."""
    task = asyncio.create_task(g.run())
    start = time.monotonic()
    try:
        while time.monotonic() - start < limit:
            await asyncio.sleep(0.1)
            if during is not None:
                await during(time.monotonic() - start)
            with engine.connect() as conn:
                if games.game_row(conn).state == until:
                    break
            assert not task.done(), task.exception()
    finally:
        g.stop()
        await task
