"""`game-server demo`: a whole game on this machine, with bot teams (see docs/DEMO.md).

The demo is `game-server run` with teams that play by themselves: it creates a fresh game
database in `instance/demo-<time>/`, trains the bots' models with the starter's training
code, starts each bot as a separate process serving the participant starter, registers
them, and runs the game and the web app in this process through `serve.run`, the code
path of `game-server run`. A supervisor beside the game loop prints progress, takes the
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
import shutil
import signal
import socket
import subprocess
import sys
import time
import webbrowser
from dataclasses import dataclass
from pathlib import Path

import requests
import sqlalchemy as sa

from game_server import serve
from game_server.demo.bots import TRAIN_CSV, Variant, missing_parts, team_plan
from game_server.demo.bots.processes import ChildProcesses
from game_server.logs import configure_logging
from game_server.play import teams as registry
from game_server.play.loop import Game, prepare_game
from game_server.scenario.gamefile import GameFile
from game_server.storage import database as storage
from game_server.storage import export

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
PROGRESS_SECONDS = 15.0  # a standings line this often
READY_SECONDS = 60.0  # bots must answer /health within this
TRAIN_SECONDS = 180.0  # one model's training, at most
FLAKY_DOWN_AT = 0.4  # the flaky team goes down at this share of the game...
FLAKY_DOWN_SHARE = 0.1  # ...for this share of it...
FLAKY_DOWN_MAX = 30.0  # ...and at most this many seconds
MIN_LABEL_DELAY = 2.0  # a compressed game still reveals labels this late at least
# One thread per numeric library in the bots: on 2 cores, OpenMP's default (a thread per
# core in every process) made a 1 s gradient-boosting fit take 15 s under load.
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class DemoError(RuntimeError):
    """The demo cannot go on (one line saying why)."""


def compress(game_file: GameFile, duration: float) -> GameFile:
    """The game with its phases scaled to `duration` seconds in all (a shorter label delay too)."""
    factor = duration / game_file.duration
    phases = tuple(dataclasses.replace(p, duration=p.duration * factor) for p in game_file.phases)
    delay = game_file.settings.label_delay
    settings = dataclasses.replace(
        game_file.settings, label_delay=min(delay, max(MIN_LABEL_DELAY, delay * factor))
    )
    return dataclasses.replace(game_file, phases=phases, settings=settings)


def port_is_free(port: int) -> bool:
    """Whether a server could listen on HOST:port now (with SO_REUSEADDR, as servers do)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """`count` different free loopback ports (held together, so none is picked twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def new_folder(root: Path) -> Path:
    """A new folder `root/demo-<date>-<time>` (a suffix when two runs start the same second)."""
    stamp = time.strftime("demo-%Y%m%d-%H%M%S")
    for n in range(1, 100):
        folder = root / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir(parents=True)
            return folder.resolve()
        except FileExistsError:
            continue
    raise DemoError(f"cannot create a new demo folder in {root}")


def open_browser(url: str) -> bool:
    """Open `url` in a graphical browser when there is one; never fails."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return False  # no screen: webbrowser would start a text browser in this terminal
    try:
        return bool(webbrowser.open(url, new=2))
    except Exception:  # any browser trouble is not the demo's trouble
        return False


def tail(path: Path, lines: int = 3) -> str:
    """The last lines of a log file, folded into one line."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no output)"
    return " | ".join(text[-lines:]) or "(no output)"


@dataclass
class Bot:
    """One bot team: its variant, port, folder and token."""

    name: str
    variant: Variant
    port: int
    folder: Path
    token: str = ""
    pid: int | None = None  # of its latest process

    @property
    def url(self) -> str:
        """The URL the customer calls."""
        return f"http://{HOST}:{self.port}/predict"


class Demo:
    """One demo run: its folder, database, bots and their processes."""

    def __init__(
        self,
        game_file: GameFile,
        teams: int,
        port: int,
        browser: bool,
        root: Path = Path("instance"),
        echo=print,
        log_level: str = "INFO",
    ):
        """Plan the run (nothing starts until `run()`)."""
        self.game_file = game_file
        self.port = port or free_ports(1)[0]  # 0: any free port
        self.browser = browser
        self.root = root
        self.echo = echo
        self.log_level = log_level
        self.plan = team_plan(teams)
        self.children = ChildProcesses()
        self.bots: list[Bot] = []
        self.folder: Path | None = None
        self.engine = None
        self.web_url = f"http://{HOST}:{self.port}/"
        self.began = time.monotonic()
        self.first_scored: float | None = None
        settings = game_file.settings
        self.train_csv = Path(settings.training_data) if settings.training_data else TRAIN_CSV
        self.label = settings.label_column
        down_for = min(FLAKY_DOWN_MAX, FLAKY_DOWN_SHARE * game_file.duration)
        self.flaky_down = (FLAKY_DOWN_AT * game_file.duration, down_for)
        self.flaky_state = "up"  # up -> down -> back
        self.reported_exits: set[str] = set()

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
        self.folder = new_folder(self.root)
        log_file = open(self.folder / "game.log", "a", buffering=1)  # noqa: SIM115 (closed below)
        try:
            configure_logging(self.log_level, log_file)
            self._play()
            return self._finish()
        finally:
            log_file.close()

    def _play(self) -> None:
        """Everything from the bots' training to the game's end, then every bot stopped."""
        self.echo(f"demo folder: {self.folder} (the game's log: game.log)")
        self.echo(f"leaderboard: {self.web_url} (live once the bots are up, 10-20 s from now)")
        # The instructor page (pause, next phase, ...) needs a token; the demo makes one.
        token = os.environ.setdefault("GAME_ADMIN_TOKEN", secrets.token_urlsafe(16))
        self.echo(f"instructor page: {self.web_url}admin (token: {token})")
        atexit.register(self.children.stop_all)
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            self._prepare()
            serve.run(
                self.engine, self.game_file, HOST, self.port, start=True, beside=self.supervise
            )
        except KeyboardInterrupt:
            self.echo("interrupted")
        finally:
            signal.signal(signal.SIGTERM, _interrupt)  # asyncio reset it; cleanup must finish
            self.echo("stopping the bots...")
            self.children.stop_all()
            self._write_record()
            signal.signal(signal.SIGTERM, previous)
            atexit.unregister(self.children.stop_all)

    def _prepare(self) -> None:
        """Database, models, bots up and registered."""
        url = f"sqlite:///{self.folder / 'game.sqlite'}"
        self.engine = storage.make_engine(url)
        prepare_game(self.engine, self.game_file)
        self._train_models()
        ports = free_ports(len(self.plan))
        for (name, variant), port in zip(self.plan, ports, strict=True):
            bot = Bot(name, variant, port, self.folder / "bots" / name)
            bot.token = registry.add_team(self.engine, name, bot.url)
            self.bots.append(bot)
            self._start_bot(bot)
        self._write_record()
        self._wait_ready()
        self.echo(f"{len(self.bots)} bots up in {time.monotonic() - self.began:.1f} s:")
        for bot in self.bots:
            self.echo(f"  {bot.name:<12} port {bot.port}  {bot.variant.summary}")

    def _train_models(self) -> None:
        """Train each kind of model the bots need once, in parallel processes."""
        kinds = sorted({variant.model for _, variant in self.plan})
        self.echo(f"training the bots' models ({', '.join(kinds)}) with the starter's code...")
        models = self.folder / "models"
        for kind in kinds:
            argv = [*self._worker("train"), "--kind", kind, "--out", str(models / f"{kind}.pkl")]
            self.children.start(f"train-{kind}", argv, self._env(), models / f"{kind}.log")
        for kind in kinds:
            try:
                status = self.children.wait(f"train-{kind}", TRAIN_SECONDS)
            except subprocess.TimeoutExpired:
                raise DemoError(
                    f"training the {kind} model took over {TRAIN_SECONDS:.0f} s"
                ) from None
            if status != 0:
                raise DemoError(f"training the {kind} model failed: {tail(models / f'{kind}.log')}")

    def _worker(self, command: str) -> list[str]:
        """The command line of a bot process."""
        return [
            sys.executable,
            "-m",
            "game_server.demo.bots.worker",
            command,
            "--data",
            str(self.train_csv),
            "--label",
            self.label,
        ]

    def _env(self, **settings: str) -> dict:
        """The environment of a child: this one, single-threaded maths, the starter's settings."""
        env = {k: v for k, v in os.environ.items() if k != "GAME_ADMIN_TOKEN"}
        return {**env, **SINGLE_THREADED, **settings}

    def _start_bot(self, bot: Bot) -> None:
        """Start (or restart) one bot's process; its model is a copy of its kind's model."""
        model = bot.folder / "model.pkl"
        if not model.exists():
            bot.folder.mkdir(parents=True, exist_ok=True)
            source = self.folder / "models" / f"{bot.variant.model}.pkl"
            shutil.copy(source, model)  # each bot its own file: the careful one retrains it
            shutil.copy(source.with_suffix(".json"), bot.folder / "model.json")
        env = self._env(
            HOST=HOST,
            PORT=str(bot.port),
            MODEL_PATH=str(model),
            MODEL_CHECK_SECONDS="1",
            DATABASE_URL=f"sqlite:///{bot.folder / 'predictions.sqlite'}",
            LOG_FILE=str(bot.folder / "api.log"),
            LOG_LEVEL="INFO",
            GAME_URL=self.web_url.rstrip("/"),
            TEAM_TOKEN=bot.token,
        )
        argv = [
            *self._worker("serve"),
            "--variant",
            bot.variant.name,
            "--watch-stdin",
            "--folder",
            str(bot.folder),
        ]
        bot.pid = self.children.start(bot.name, argv, env, bot.folder / "console.log").pid

    def _wait_ready(self) -> None:
        """Wait until every bot answers GET /health."""
        deadline = time.monotonic() + READY_SECONDS
        waiting = list(self.bots)
        http = requests.Session()
        http.trust_env = False  # loopback: never through a proxy from the environment
        while waiting:
            for bot in list(waiting):
                if bot.name in self.children.exited():
                    raise DemoError(
                        f"bot {bot.name} exited at start: {tail(bot.folder / 'console.log')}"
                    )
                try:
                    ok = http.get(f"http://{HOST}:{bot.port}/health", timeout=1).ok
                except requests.RequestException:
                    ok = False
                if ok:
                    waiting.remove(bot)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(b.name for b in waiting)
                raise DemoError(f"bots not up after {READY_SECONDS:.0f} s: {names}")
            if waiting:
                time.sleep(0.2)

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
            await self._flaky(self.game_file.duration - (clock["time_left"] or 0.0))
            self._report_exits()

    def _board(self) -> dict:
        """The leaderboard as the API serves it."""
        with self.engine.connect() as conn:
            return storage.leaderboard(conn)

    def _clock(self, clock: dict) -> str:
        """The game time as m:ss."""
        elapsed = self.game_file.duration - (clock["time_left"] or 0.0)
        return f"{int(elapsed // 60)}:{int(elapsed % 60):02d}"

    async def _flaky(self, elapsed: float) -> None:
        """Take the flaky teams down at their time, and bring them back after their outage."""
        down_at, down_for = self.flaky_down
        flaky = [bot for bot in self.bots if bot.variant.flaky]
        if not flaky:
            return
        if self.flaky_state == "up" and elapsed >= down_at:
            self.flaky_state = "down"
            for bot in flaky:
                await asyncio.to_thread(self.children.stop, bot.name)
            names = ", ".join(b.name for b in flaky)
            self.echo(f"  {names}: API down (its process stopped), back in {down_for:.0f} s")
        elif self.flaky_state == "down" and elapsed >= down_at + down_for:
            self.flaky_state = "back"
            for bot in flaky:
                await asyncio.to_thread(self._start_bot, bot)
            await asyncio.to_thread(self._write_record)
            self.echo(f"  {', '.join(b.name for b in flaky)}: API restarted")

    def _report_exits(self) -> None:
        """Say once when a bot's process ended by itself (a crash)."""
        for name, status in self.children.exited().items():
            if name not in self.reported_exits:
                self.reported_exits.add(name)
                folder = self.folder / "bots" / name
                self.echo(f"  bot {name} exited (status {status}): {tail(folder / 'console.log')}")

    # --- the end ------------------------------------------------------------------------

    def _write_record(self) -> None:
        """demo.json: where things are and every process the demo started (for tests, people)."""
        if self.folder is None:
            return
        record = {
            "pid": os.getpid(),
            "folder": str(self.folder),
            "url": self.web_url,
            "port": self.port,
            "database": str(self.folder / "game.sqlite"),
            "bots": [
                {
                    "name": b.name,
                    "variant": b.variant.name,
                    "port": b.port,
                    "url": b.url,
                    "pid": b.pid,
                }
                for b in self.bots
            ],
            "pids": list(self.children.started),
            "first_scored_seconds": self.first_scored,
        }
        path = self.folder / "demo.json"
        path.with_suffix(".tmp").write_text(json.dumps(record, indent=2) + "\n")
        os.replace(path.with_suffix(".tmp"), path)

    def _phase_points(self) -> tuple[list[str], dict[str, dict[int, int]]]:
        """The phase names, and each team's points in each phase."""
        t, x = storage.teams, storage.team_totals
        with self.engine.connect() as conn:
            names = [p["name"] for p in storage.phase_list(conn)]
            rows = conn.execute(
                sa.select(t.c.name, x.c.phase_index, x.c.points).join(t, t.c.id == x.c.team_id)
            ).all()
        points: dict[str, dict[int, int]] = {}
        for team, phase, value in rows:
            points.setdefault(team, {})[phase] = int(value)
        return names, points

    def _finish(self) -> dict:
        """Print the final standings, export the game; the final leaderboard."""
        if self.engine is None:
            return {}
        board = self._board()
        finished = board["game"]["state"] == "finished"
        self.echo("")
        self.echo(("Final standings" if finished else "Standings when stopped") + ":")
        self.echo(standings_table(board))
        self.echo("")
        self.echo("Points by phase (where each team won and lost them):")
        self.echo(phase_table(*self._phase_points()))
        out = self.folder / "export"
        export.export(self.engine, out)
        self.echo(f"export (CSV and JSON): {out}")
        self.echo(f"everything of this run (database, logs, each bot's files): {self.folder}")
        self.engine.dispose()
        return board


def _interrupt(*_args) -> None:
    """SIGTERM outside the game loop: stop like Ctrl-C, so the bots are stopped too."""
    raise KeyboardInterrupt


def standings_line(board: dict) -> str:
    """One compact line: every team's points, then the references."""
    teams = " · ".join(f"{t['name']} {t['points']}" for t in board["teams"])
    ref = board["reference"]
    return (
        f"{teams} | oracle {ref['oracle_points']:.0f} · baseline {ref['baseline_points']:.0f}"
        f" ({ref['requests']} requests)"
    )


def phase_table(phases: list[str], points: dict[str, dict[int, int]]) -> str:
    """Each team's points per phase, teams in order of their total."""
    widths = [max(8, len(p) + 2) for p in phases]
    lines = [f"{'team':<14}" + "".join(f"{p:>{w}}" for p, w in zip(phases, widths, strict=True))]
    for team, by_phase in sorted(points.items(), key=lambda kv: -sum(kv[1].values())):
        cells = "".join(f"{by_phase.get(i, 0):>{w}}" for i, w in enumerate(widths))
        lines.append(f"{team:<14}{cells}")
    return "\n".join(lines)


def standings_table(board: dict) -> str:
    """The standings as a table, with the oracle and the baseline for comparison."""
    ref = board["reference"]
    oracle, baseline = ref["oracle_points"], ref["baseline_points"]
    lines = [
        f"{'rank':>4}  {'team':<14}{'points':>7}{'correct':>9}{'wrong':>7}{'failed':>8}"
        f"{'vs oracle':>11}{'vs baseline':>13}"
    ]
    for t in board["teams"]:
        lines.append(
            f"{t['rank']:>4}  {t['name']:<14}{t['points']:>7}{t['correct']:>9}{t['wrong']:>7}"
            f"{t['failed']:>8}{t['points'] - oracle:>+11.1f}{t['points'] - baseline:>+13.1f}"
        )
    lines.append(
        f"      {'oracle':<14}{oracle:>7.1f}   the best possible answers (expected points)"
    )
    lines.append(f"      {'baseline':<14}{baseline:>7.1f}   always the majority class (expected)")
    lines.append(f"      {ref['requests']} requests scored, {ref['void']} void")
    return "\n".join(lines)
