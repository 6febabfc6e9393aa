"""The game's private files are private (issue 15, item 4).

The SQLite game database holds every label and the web app's secret key (`web_settings`),
and teams have shell accounts on the game's machine. `game-server init` creates the
database's folder 0700 and its files 0600; SQLite's -wal and -shm files follow the
database file's mode; and another Linux user (here `nobody`) can read none of them.
"""

import asyncio
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from engine_helpers import fast_game, play
from team_apis import TeamAPIs, json_answer

from game_server.play import loop as game
from game_server.play import teams
from game_server.storage import control, database, schema
from game_server.web.app import create_app

SYSTEM_PYTHON = "/usr/bin/python3"  # one every user may run (the tests' venv may not be)
READ_SECRET = (
    "import sqlite3, sys\n"
    "db = sqlite3.connect(f'file:{sys.argv[1]}?mode=ro', uri=True)\n"
    "print(db.execute(\"SELECT value FROM web_settings WHERE key = 'secret_key'\").fetchone())\n"
)


@pytest.fixture
def open_dir():
    """A folder every user may enter, as a game's working directory is (tmp_path is not)."""
    path = Path(tempfile.mkdtemp(prefix="private-files-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def mode(path: Path) -> int:
    """The permission bits of `path`."""
    return stat.S_IMODE(path.stat().st_mode)


def as_nobody(*argv: str) -> subprocess.CompletedProcess:
    """Run a command as the unprivileged user `nobody`."""
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", *argv], capture_output=True, text=True, timeout=60
    )


def init_in(folder: Path) -> subprocess.CompletedProcess:
    """`game-server init` in `folder` with the default database and the usual umask (022)."""
    env = {k: v for k, v in os.environ.items() if k != "GAME_DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "game_server", "init", "--game", str(fast_game().path)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),
    )


def play_a_game(url: str) -> sa.Engine:
    """A short game on `url` with one team, and the web app's secret key; the engine, still
    connected (SQLite keeps the -wal and -shm files while a connection is open)."""
    engine = database.make_engine(url)
    apis = TeamAPIs()
    try:
        game_file = fast_game()
        database.prepare_game(engine, game_file)
        teams.add_team(engine, "zero", apis.start(json_answer({"pred": 0})).url)
        create_app({"DATABASE_URL": url, "TESTING": True})  # stores the shared secret key
        control.apply(engine, "start", "tester")
        asyncio.run(play(game.Game(engine, game_file), engine))
    finally:
        apis.close()
    return engine


@pytest.mark.root
def test_the_game_database_is_private_to_the_games_user(open_dir):
    created = init_in(open_dir)
    assert created.returncode == 0, created.stderr
    folder, db = open_dir / "instance", open_dir / "instance" / "game.sqlite"
    assert (mode(folder), mode(db)) == (0o700, 0o600)
    assert as_nobody("ls", str(folder)).returncode != 0
    refused = as_nobody("cat", str(db))
    assert refused.returncode != 0 and "Permission denied" in refused.stderr

    engine = play_a_game(f"sqlite:///{db}")
    with engine.connect() as conn:  # after a game, with the write-ahead log in use
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.results)).scalar()
        files = sorted(folder.iterdir())
        assert [f.name for f in files] == ["game.sqlite", "game.sqlite-shm", "game.sqlite-wal"]
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert mode(folder) == 0o700
        # the game's own user reads the secret key; nobody else can, even through an open
        # folder (0755 here, to show that the files' own modes keep them)
        mine = subprocess.run([SYSTEM_PYTHON, "-c", READ_SECRET, str(db)], capture_output=True)
        assert mine.returncode == 0 and len(mine.stdout.strip()) > 60, mine.stderr
        folder.chmod(0o755)
        for f in files:
            refused = as_nobody("cat", str(f))
            assert refused.returncode != 0 and "Permission denied" in refused.stderr
        stolen = as_nobody(SYSTEM_PYTHON, "-c", READ_SECRET, str(db))
        assert stolen.returncode != 0 and "unable to open database" in stolen.stderr
    engine.dispose()


def test_an_older_readable_database_is_narrowed_and_other_folders_left_alone(open_dir):
    db = open_dir / "game.sqlite"
    engine = database.make_engine(f"sqlite:///{db}")
    database.init_db(engine)
    engine.dispose()
    for suffix in ("", "-wal", "-shm"):  # as an earlier version (or a 022 umask) left them
        path = db.with_name(db.name + suffix)
        path.touch()
        path.chmod(0o644)
    database.make_engine(f"sqlite:///{db}").dispose()
    assert {p.name: mode(p) for p in open_dir.iterdir()} == {
        "game.sqlite": 0o600,
        "game.sqlite-wal": 0o600,
        "game.sqlite-shm": 0o600,
    }
    assert mode(open_dir) == 0o755  # a folder the game did not create keeps its mode
    nested = open_dir / "a" / "b" / "game.sqlite"
    database.make_engine(f"sqlite:///{nested}").dispose()
    assert (mode(nested.parent), mode(nested)) == (0o700, 0o600)
