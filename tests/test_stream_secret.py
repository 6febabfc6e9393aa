"""The customer's stream is secret (GAME.md §8a; issue 21, item 2).

The game's code and game file are readable by every user of the game's server, and a
request id carries its seq. Before the secret, a team API that imported `Scenario` with
the builtin game and drew the same (phase, seq) answered every request right. Here that
team plays the real game loop (real APIs on 127.0.0.1, the real customer and database)
beside an honest one: it must do no better, and the secret made at `init` must show
nowhere (pages, APIs, export, logs).
"""

import asyncio
import dataclasses
import json
import logging

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from engine_helpers import play
from team_apis import Handler, Request, TeamAPIs, json_answer, response

from game_server.cli.main import main
from game_server.play import loop as game
from game_server.play import teams
from game_server.play.schedule import SeqPlan
from game_server.scenario.gamefile import GameFile, builtin_game_path, load_game_file
from game_server.scenario.stream import Scenario
from game_server.storage import control, database, export, games, schema
from game_server.web.app import create_app

ADMIN = "instructor-token-for-the-secret-test"


@pytest.fixture
def apis():
    """A place to start team APIs; closed after the test."""
    servers = TeamAPIs()
    yield servers
    servers.close()


def short_workshop() -> GameFile:
    """The builtin workshop game (its seed, phases, shift and drift), each phase 0.8 s."""
    builtin = load_game_file(builtin_game_path("workshop"))
    phases = tuple(dataclasses.replace(p, duration=0.8, rate=40.0, burst=4) for p in builtin.phases)
    settings = dataclasses.replace(
        builtin.settings, label_delay=0.5, timeout=0.5, allowed_hosts=("127.0.0.1",)
    )
    return dataclasses.replace(builtin, phases=phases, settings=settings)


def recomputing(game_file: GameFile, seen: dict) -> Handler:
    """The attack: the installed code and the game file, the seq from the request id."""
    public = Scenario(game_file)  # all a team can import: no game database
    plan = SeqPlan(game_file.phases)

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        body = req.json()
        seq = int(body["id"].rsplit("-", 1)[1])
        phase = next(i for i in range(len(plan.sizes)) if seq <= plan.span(i)[1])
        guess = public.draw(phase, seq)
        seen["answered"] += 1
        seen["same_applicant"] += guess.features == body["features"]
        seen["bodies"].append(req.body)
        writer.write(response(200, json.dumps({"pred": guess.label}).encode()))

    return handle


def accuracy(engine: sa.Engine, team_id: int) -> tuple[float, int]:
    """A team's share of right answers among its valid answers, and their number."""
    res = schema.results
    with engine.connect() as conn:
        outcomes = conn.execute(
            sa.select(res.c.outcome).where(
                res.c.team_id == team_id, res.c.outcome.in_(("correct", "wrong"))
            )
        ).scalars()
        got = list(outcomes)
    return sum(o == "correct" for o in got) / max(len(got), 1), len(got)


def every_view(db_url: str, tokens: dict[str, str], folder) -> list[str]:
    """Every page and API of the played game (public, a team's, the instructor's) and
    its export, as text."""
    app = create_app({"DATABASE_URL": db_url, "TESTING": True, "ADMIN_TOKEN": ADMIN})
    client = app.test_client()
    texts = []
    for path in (
        "/",
        "/api/health",
        "/api/leaderboard",
        "/api/history",
        "/api/monitoring",
        "/monitoring",
        "/api/openapi.json",
    ):
        texts.append(client.get(path).get_data(as_text=True))
    for name, token in tokens.items():
        auth = {"Authorization": f"Bearer {token}"}
        for path in (f"/teams/{name}", f"/api/teams/{name}", f"/api/teams/{name}/results"):
            texts.append(client.get(path, headers=auth).get_data(as_text=True))
        texts.append(client.get("/api/feedback?limit=500", headers=auth).get_data(as_text=True))
    admin = {"Authorization": f"Bearer {ADMIN}"}
    texts.append(client.get("/api/admin/control-log", headers=admin).get_data(as_text=True))
    page = client.get("/admin").get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/admin/login", data={"token": ADMIN, "csrf_token": csrf})
    texts.append(client.get("/admin").get_data(as_text=True))
    export.export(database.make_engine(db_url), folder)
    texts += [f.read_text() for f in sorted(folder.iterdir())]
    return texts


def forms(secret: str) -> list[str]:
    """The secret as it could leak: its hex (or a part), its number."""
    return [secret.lower(), secret[:16].lower(), secret[-16:].lower(), str(int(secret, 16))]


def test_a_team_that_recomputes_the_stream_does_no_better_than_an_honest_one(
    db_url, apis, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    engine = database.make_engine(db_url)
    game_file = short_workshop()
    database.init_db(engine)  # `game-server init`: the secret is made here
    database.prepare_game(engine, game_file)
    seen: dict = {"answered": 0, "same_applicant": 0, "bodies": []}
    majority = Scenario(game_file).baseline_pred
    recompute = apis.start(recomputing(game_file, seen)).url
    honest_api = apis.start(json_answer({"pred": majority})).url
    tokens = {
        "recompute": teams.add_team(engine, "recompute", recompute),
        "honest": teams.add_team(engine, "honest", honest_api),
    }
    with engine.connect() as conn:
        ids = dict(conn.execute(sa.select(schema.teams.c.name, schema.teams.c.id)).all())
    control.apply(engine, "start", "tester")
    asyncio.run(play(game.Game(engine, game_file), engine, until="finished", limit=20.0))

    cheat, answered = accuracy(engine, ids["recompute"])
    honest, _ = accuracy(engine, ids["honest"])
    assert answered >= 80 and seen["answered"] >= answered  # it played the game (160 rounds)
    # the applicant it computes is never the one the customer sent...
    assert seen["same_applicant"] == 0, seen["same_applicant"]
    # ...so its labels are guesses: no better than always answering the majority class
    # (before the secret it was right every time)
    assert cheat < 0.85 and cheat <= honest + 0.1, (cheat, honest, answered)

    with engine.connect() as conn:
        secret = games.read_stream_secret(conn)
    assert len(secret) * 4 >= 128
    texts = every_view(db_url, tokens, tmp_path / "export")
    texts += [r.getMessage() for r in caplog.records]
    texts += [b.decode() for b in seen["bodies"]]  # what the customer sent
    assert len(texts) > 20
    everything = "\n".join(texts).lower()
    assert not [f for f in forms(secret) if f in everything]


def test_init_again_and_every_start_keep_the_one_secret_made_at_init(db_url):
    engine = database.make_engine(db_url)
    database.init_db(engine)
    with engine.connect() as conn:
        made = games.read_stream_secret(conn)
    database.init_db(engine)  # a second init, a shard's start, a restart: the same secret
    database.prepare_game(engine, short_workshop())
    with engine.connect() as conn:
        assert games.read_stream_secret(conn) == made
        count = conn.execute(sa.select(sa.func.count()).select_from(schema.stream_secret))
        assert count.scalar() == 1


def test_a_database_made_before_the_secret_gets_one_at_its_next_start(db_url, caplog):
    engine = database.make_engine(db_url)
    game_file = short_workshop()
    database.prepare_game(engine, game_file)
    control.apply(engine, "start", "tester")
    schema.stream_secret.drop(engine)  # as an older version left it
    with engine.connect() as conn, pytest.raises(games.NotInitialised):
        games.read_stream_secret(conn)
    caplog.set_level(logging.INFO)
    database.prepare_game(engine, game_file)  # what `game-server run` does first
    with engine.connect() as conn:
        secret = games.read_stream_secret(conn)
        assert games.game_row(conn).state == "running"  # the game goes on
    assert any("stream secret added" in r.getMessage() for r in caplog.records)
    assert not any(secret in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("stored", ["abc", "z" * 64, "0123456789abcdef"])
def test_run_on_a_damaged_secret_is_one_line_that_does_not_show_it(db_url, stored, keep_logging):
    runner = CliRunner()
    assert runner.invoke(main, ["--db", db_url, "init"]).exit_code == 0
    engine = database.make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(schema.stream_secret.update().values(secret=stored))
    done = runner.invoke(main, ["--db", db_url, "run", "--no-web"])
    assert done.exit_code == 1, done.output
    error = done.output.strip().splitlines()[-1]
    assert error.startswith("Error: ") and "stream secret is damaged" in error, done.output
    assert stored not in done.output
    with engine.connect() as conn:  # nothing was played, nothing was changed
        assert games.game_row(conn).state == "lobby"
        assert conn.execute(sa.select(schema.stream_secret.c.secret)).scalar() == stored


@pytest.mark.parametrize("stored", ["", "abc", "z" * 64, "0123456789abcdef"])
def test_a_broken_secret_fails_with_one_line_that_does_not_show_it(stored):
    scenario = Scenario(short_workshop())
    with pytest.raises(ValueError) as failure:
        scenario.keyed(stored)
    message = str(failure.value)
    assert "\n" not in message and "128 bits" in message
    assert not stored or stored not in message


def test_the_stream_depends_on_the_secret_and_the_training_data_does_not():
    game_file = short_workshop()
    one, two = "1" * 64, "2" * 64
    a, again, b = Scenario(game_file, one), Scenario(game_file, one), Scenario(game_file, two)
    for phase in range(len(game_file.phases)):
        drawn = [a.draw(phase, s) for s in range(300)]
        assert drawn == [again.draw(phase, s) for s in range(300)]  # one game: one stream
        other = [b.draw(phase, s) for s in range(300)]
        assert sum(x.features == y.features for x, y in zip(drawn, other, strict=True)) == 0
    assert a.training_frame().equals(b.training_frame())
    assert a.keyed(two).draw(2, 5) == b.draw(2, 5)
    assert Scenario(game_file).draw(0, 1) != Scenario(game_file).draw(0, 1)  # no default
