"""`game-server demo`: a whole game on this machine, with bot teams (see docs/DEMO.md).

The demo is `game-server run` with teams that play by themselves: it creates a fresh game
database in `instance/demo-<time>/`, trains the bots' models with the starter's training
code, starts each bot as a separate process serving the participant starter, registers
them, and runs the game (and the web app, as a child process) through `serve.run`, the
code path of `game-server run`. A supervisor beside the game loop prints progress, takes the
flaky team down and up, and ends the run when the game is finished. Whatever happens
(the end, Ctrl-C, SIGTERM, an error), every bot process is stopped before it returns.
"""

import asyncio
import atexit
import dataclasses
import json
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import sqlalchemy as sa

from game_server.common import settings
from game_server.common.logs import configure_logging
from game_server.demo.bots import TRAIN_CSV, missing_parts, team_plan
from game_server.demo.fleet import Fleet
from game_server.demo.machine import (
    HOST,
    DemoError,
    free_ports,
    new_folder,
    open_browser,
    port_is_free,
)
from game_server.demo.own import OwnTeam, announce, check_teams, report
from game_server.demo.report import phase_table, standings_line, standings_table
from game_server.play import teams as registration
from game_server.play.loop import Game
from game_server.processes import serve
from game_server.scenario.gamefile import GameFile
from game_server.storage import database, export, games, schema, standings

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 15.0  # a standings line this often
MIN_LABEL_DELAY = 2.0  # a compressed game still reveals labels this late at least


def compress(game_file: GameFile, duration: float) -> GameFile:
    """The game with its phases scaled to `duration` seconds in all (a shorter label delay too)."""
    factor = duration / game_file.duration
    phases = tuple(dataclasses.replace(p, duration=p.duration * factor) for p in game_file.phases)
    delay = game_file.settings.label_delay
    settings = dataclasses.replace(
        game_file.settings, label_delay=min(delay, max(MIN_LABEL_DELAY, delay * factor))
    )
    return dataclasses.replace(game_file, phases=phases, settings=settings)


class Demo:
    """One demo run: its folder, database, bots and their processes."""

    # Made by run(), before any method that uses them.
    folder: Path
    engine: sa.Engine
    fleet: Fleet

    def __init__(
        self,
        game_file: GameFile,
        teams: int,
        port: int,
        browser: bool,
        starter_level: str = "complete",
        root: Path = Path("instance"),
        echo: Callable[[str], None] = print,
        log_level: str = "INFO",
        own_teams: list[OwnTeam] | None = None,
    ):
        """Plan the run (nothing starts until `run()`)."""
        self.game_file = game_file
        self.starter_level = starter_level
        self.port = port or free_ports(1)[0]  # 0: any free port
        self.browser = browser
        self.root = root
        self.echo = echo
        self.log_level = log_level
        self.plan = team_plan(teams)
        self.own_teams = own_teams or []  # the player's APIs (`--team`), beside the bots
        self.web_url = f"http://{HOST}:{self.port}/"
        self.began = time.monotonic()
        self.first_scored: float | None = None

    # --- the run ------------------------------------------------------------------------

    def run(self) -> dict:
        """Play the demo to its end (or Ctrl-C / SIGTERM); the final leaderboard."""
        problem = missing_parts()
        if problem:
            raise DemoError(problem)
        if not port_is_free(self.port):
            raise DemoError(
                f"port {self.port} is in use (another game server?): choose one with --port"
            )
        try:
            allowed = self.game_file.settings.allowed_hosts
            check_teams(self.own_teams, allowed, [name for name, _ in self.plan])
        except ValueError as exc:
            raise DemoError(str(exc)) from None
        self.folder = new_folder(self.root)
        settings = self.game_file.settings
        train_csv = Path(settings.training_data) if settings.training_data else TRAIN_CSV
        self.fleet = Fleet(
            self.plan,
            self.folder,
            train_csv,
            settings.label_column,
            self.game_file.duration,
            self.echo,
            self.starter_level,
        )
        self.engine = database.make_engine(f"sqlite:///{self.folder / 'game.sqlite'}")
        log_file = open(self.folder / "game.log", "a", buffering=1)  # noqa: SIM115 (closed below)
        try:
            configure_logging(self.log_level, log_file)
            self._play(log_file)
            return self._finish()
        finally:
            log_file.close()

    def _play(self, log_file: IO[str]) -> None:
        """Everything from the bots' training to the game's end, then every bot stopped."""
        self.echo(f"demo folder: {self.folder} (the game's log: game.log)")
        self.echo(f"leaderboard: {self.web_url} (live once the bots are up, 10-20 s from now)")
        # The instructor page (pause, next phase, ...) needs a token; the demo makes one.
        token = settings.get(settings.ADMIN_TOKEN) or secrets.token_urlsafe(16)
        os.environ[settings.ADMIN_TOKEN.env] = token  # the web process reads it there
        self.echo(f"instructor page: {self.web_url}admin (token: {token})")
        if self.starter_level == "exercises":
            self.echo(
                "starter level: exercises. The bots run the complete code (the exercises' "
                "solutions); those with the starter's model begin with the leak, as the "
                "exercise level's notebook trains it, and find it during the game"
            )
        atexit.register(self.fleet.stop_all)
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            self._prepare()
            serve.run(
                self.engine,
                self.game_file,
                HOST,
                self.port,
                start=True,
                beside=self.supervise,
                log_file=log_file,  # the web process's log too
            )
        except KeyboardInterrupt:
            self.echo("interrupted")
        finally:
            signal.signal(signal.SIGTERM, _interrupt)  # asyncio reset it; cleanup must finish
            self.echo("stopping the bots...")
            self.fleet.stop_all()
            self._write_record()
            signal.signal(signal.SIGTERM, previous)
            atexit.unregister(self.fleet.stop_all)

    def _prepare(self) -> None:
        """Database, models, bots up and registered."""
        database.prepare_game(self.engine, self.game_file)
        self.fleet.train_models()
        engine = self.engine
        self.fleet.start(
            free_ports(len(self.plan)),
            lambda name, url: registration.add_team(engine, name, url),
            self.web_url,
        )
        for team in self.own_teams:
            team.token = registration.add_team(engine, team.name, team.url)
        self._write_record()
        self.fleet.wait_ready()
        self.echo(f"{len(self.fleet.bots)} bots up in {time.monotonic() - self.began:.1f} s:")
        for bot in self.fleet.bots:
            self.echo(f"  {bot.name:<12} port {bot.port}  {bot.variant.summary}")
        announce(self.own_teams, self.web_url, self.echo)

    # --- beside the game loop -----------------------------------------------------------

    async def supervise(self, game: Game, web_url: str) -> None:
        """Progress lines, the flaky team's outage, the end of the run (in the game's loop)."""
        self.web_url = web_url
        self.echo(f"game started: leaderboard on {web_url} (Ctrl-C stops the demo)")
        if self.browser:
            await asyncio.to_thread(open_browser, web_url)
        await asyncio.to_thread(self._write_record)
        phase, last_line = None, time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            try:
                board = await asyncio.to_thread(self._board)
            except Exception as exc:  # a busy database must not end the demo
                log.warning("demo supervisor could not read the leaderboard error=%s", exc)
                continue
            clock = board["game"]
            if self.first_scored is None and board["reference"]["requests"]:
                self.first_scored = time.monotonic() - self.began
                self.echo(f"first round scored {self.first_scored:.1f} s after start")
            if clock["phase"] and clock["phase"]["index"] != phase and clock["state"] == "running":
                phase = clock["phase"]["index"]
                p = clock["phase"]
                self.echo(
                    f"[{self._clock(clock)}] phase {phase + 1}/{clock['phase_count']}: "
                    f"{p['name']} ({p['duration']:.0f} s, {p['rate']:g} requests/s)"
                )
            if clock["state"] == "finished":
                return
            if time.monotonic() - last_line >= PROGRESS_SECONDS:
                last_line = time.monotonic()
                self.echo(f"[{self._clock(clock)}] {standings_line(board)}")
            elapsed = self.game_file.duration - (clock["time_left"] or 0.0)
            if await self.fleet.flaky(elapsed):
                await asyncio.to_thread(self._write_record)
            if clock["state"] == "running":
                await self.fleet.find_leaks(elapsed)
            self.fleet.report_exits()

    def _board(self) -> dict:
        """The leaderboard as the API serves it."""
        with self.engine.connect() as conn:
            return standings.leaderboard(conn)

    def _clock(self, clock: dict) -> str:
        """The game time as m:ss."""
        elapsed = self.game_file.duration - (clock["time_left"] or 0.0)
        return f"{int(elapsed // 60)}:{int(elapsed % 60):02d}"

    # --- the end ------------------------------------------------------------------------

    def _write_record(self) -> None:
        """demo.json: where things are and every process the demo started (for tests, people)."""
        record = {
            "pid": os.getpid(),
            "folder": str(self.folder),
            "url": self.web_url,
            "port": self.port,
            "database": str(self.folder / "game.sqlite"),
            "bots": self.fleet.records(),
            "own_teams": [{"name": t.name, "url": t.url} for t in self.own_teams],
            "starter_level": self.starter_level,
            "pids": list(self.fleet.children.started),
            "first_scored_seconds": self.first_scored,
        }
        path = self.folder / "demo.json"
        path.with_suffix(".tmp").write_text(json.dumps(record, indent=2) + "\n")
        os.replace(path.with_suffix(".tmp"), path)

    def _phase_points(self) -> tuple[list[str], dict[str, dict[int, int]]]:
        """The phase names, and each team's points in each phase."""
        t, x = schema.teams, schema.team_totals
        with self.engine.connect() as conn:
            names = [p["name"] for p in games.phase_list(conn)]
            rows = conn.execute(
                sa.select(t.c.name, x.c.phase_index, x.c.points).join(t, t.c.id == x.c.team_id)
            ).all()
        points: dict[str, dict[int, int]] = {}
        for team, phase, value in rows:
            points.setdefault(team, {})[phase] = int(value)
        return names, points

    def _finish(self) -> dict:
        """Print the final standings, export the game; the final leaderboard."""
        board = self._board()
        finished = board["game"]["state"] == "finished"
        self.echo("")
        self.echo(("Final standings" if finished else "Standings when stopped") + ":")
        self.echo(standings_table(board))
        for line in report(self.own_teams, board):
            self.echo(line)
        self.echo("")
        self.echo("Points by phase (where each team won and lost them):")
        self.echo(phase_table(*self._phase_points()))
        out = self.folder / "export"
        export.export(self.engine, out)
        self.echo(f"export (CSV and JSON): {out}")
        self.echo(f"everything of this run (database, logs, each bot's files): {self.folder}")
        self.engine.dispose()
        return board


def _interrupt(*_args: object) -> None:
    """SIGTERM outside the game loop: stop like Ctrl-C, so the bots are stopped too."""
    raise KeyboardInterrupt
