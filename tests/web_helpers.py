"""Helpers for the web tests: a game database with teams and scored rounds."""

import time

import sqlalchemy as sa
from engine_helpers import next_seq, request_row, result

from game_server.common import records
from game_server.play import teams
from game_server.scenario import gamefile
from game_server.storage import control, database, reveal, schema, writes

XSS_NAME = "<img src=x onerror=alert(1)>"


def make_game(url: str, names=("red", "blue"), start: bool = True, xss: bool = False):
    """A game (the demo game file) with teams; returns (engine, {name: token})."""
    engine = database.make_engine(url)
    database.prepare_game(engine, gamefile.load_game_file(gamefile.builtin_game_path("demo")))
    tokens = {
        n: teams.add_team(engine, n, f"http://127.0.0.1:{9001 + i}/predict", resolve=False)
        for i, n in enumerate(names)
    }
    if xss:  # a legal team name: the pages must show it as text
        tokens[XSS_NAME] = teams.add_team(
            engine, XSS_NAME, "http://127.0.0.1:9100/predict", resolve=False
        )
    if start:
        control.apply(engine, "start", "tester")
    return engine, tokens


def team_ids(engine: sa.Engine) -> dict[str, int]:
    """Team ids by name."""
    with engine.connect() as conn:
        return {n: i for i, n in conn.execute(sa.select(schema.teams.c.id, schema.teams.c.name))}


def store_results(engine: sa.Engine, outcomes: dict[str, str], rounds: int = 1, delay=0.0):
    """Store `rounds` rounds where each named team has the given outcome; the new seqs.

    Then reveal the labels that are visible, as the game loop does every second.
    """
    ids = team_ids(engine)
    now = time.time()
    with engine.begin() as conn:
        first = next_seq(conn)
        seqs = list(range(first, first + rounds))
        writes.insert_requests(
            conn, [request_row(s, sent_at=now - 1, delay=delay, label=1) for s in seqs]
        )
        writes.store_rounds(
            conn,
            [
                records.ScoredRound(
                    s,
                    0,
                    0.8,
                    0.2,
                    [
                        result(
                            ids[n],
                            o,
                            "http_status" if o == "failed" else None,
                            pred=None if o == "failed" else int(o == "correct"),
                            status=500 if o == "failed" else 200,
                        )
                        for n, o in outcomes.items()
                    ],
                )
                for s in seqs
            ],
        )
    with engine.begin() as conn:
        reveal.reveal_labels(conn)
    return seqs
