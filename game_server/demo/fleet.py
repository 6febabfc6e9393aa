"""The bot teams' processes: their models trained, each bot started, watched and stopped.

Each bot is its own process serving the participant starter (`bots/worker.py`), so the
demo's game calls real APIs over HTTP like a workshop's. The fleet knows nothing of the
game but each bot's URL and token.

At the starter's `exercises` level the bots still run the complete code (the exercises'
solutions: they are teams that did them), but a bot that trains the starter's model
begins with the one the exercise level's notebook trains, on every column, the leak
included; at its moment (`LEAK_FOUND_AT`) it finds the leak and saves the model without
it, which its API serves within a second, as a team's does.
"""

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from game_server.common.settings import ADMIN_TOKEN
from game_server.common.supervisor import Command, Supervisor
from game_server.demo.bots import Variant
from game_server.demo.machine import HOST, DemoError, tail

READY_SECONDS = 60.0  # bots must answer /health within this
TRAIN_SECONDS = 180.0  # one model's training, at most
FLAKY_DOWN_AT = 0.4  # the flaky team goes down at this share of the game...
FLAKY_DOWN_SHARE = 0.1  # ...for this share of it...
FLAKY_DOWN_MAX = 30.0  # ...and at most this many seconds
# At the exercise level: when the bots that began with the leak find it (shares of the
# game, for the first, second, ... of them; the later ones find it at the last moment).
LEAK_FOUND_AT = (0.3, 0.5, 0.7)
# One thread per numeric library in the bots: on 2 cores, OpenMP's default (a thread per
# core in every process) made a 1 s gradient-boosting fit take 15 s under load.
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


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


class Fleet:
    """The demo's bots: where they live, their processes, the flaky ones' outage."""

    def __init__(
        self,
        plan: list[tuple[str, Variant]],
        folder: Path,
        train_csv: Path,
        label: str,
        game_duration: float,
        echo: Callable[[str], object] = print,
        starter_level: str = "complete",
    ):
        """Plan the fleet in `folder` (nothing starts until `train_models` and `start`)."""
        self.plan = plan
        self.starter_level = starter_level
        self.game_duration = game_duration
        self.folder = folder
        self.train_csv = train_csv
        self.label = label
        self.echo = echo
        self.game_url = ""
        self.children = Supervisor()  # bots are not restarted: a crash is reported
        self.bots: list[Bot] = []
        down_for = min(FLAKY_DOWN_MAX, FLAKY_DOWN_SHARE * game_duration)
        self.flaky_down = (FLAKY_DOWN_AT * game_duration, down_for)
        self.flaky_state = "up"  # up -> down -> back
        self.reported_exits: set[str] = set()
        self.leak_found_at = self._leak_moments()  # {bot name: seconds into the game}
        self.leaks_found: set[str] = set()

    def start(self, ports: list[int], register: Callable[[str, str], str], game_url: str) -> None:
        """Start one bot per planned team on `ports`, registered through `register`."""
        self.game_url = game_url
        for (name, variant), port in zip(self.plan, ports, strict=True):
            bot = Bot(name, variant, port, self.folder / "bots" / name)
            bot.token = register(name, bot.url)
            self.bots.append(bot)
            self._start_bot(bot)

    def _leak_moments(self) -> dict[str, float]:
        """At the exercise level: when each bot with the starter's model finds the leak."""
        if self.starter_level != "exercises":
            return {}
        names = [name for name, variant in self.plan if variant.model == "starter"]
        last = len(LEAK_FOUND_AT) - 1
        return {
            name: LEAK_FOUND_AT[min(i, last)] * self.game_duration for i, name in enumerate(names)
        }

    def stop_all(self) -> None:
        """Stop every process the fleet started."""
        self.children.stop_all()

    def train_models(self) -> None:
        """Train each kind of model the bots need once, in parallel processes."""
        kinds = sorted({variant.model for _, variant in self.plan} | self._first_kinds())
        self.echo(f"training the bots' models ({', '.join(kinds)}) with the starter's code...")
        models = self.folder / "models"
        for kind in kinds:
            argv = [*self._worker("train"), "--kind", kind, "--out", str(models / f"{kind}.pkl")]
            self._start(f"train-{kind}", argv, self._env(), models / f"{kind}.log")
        for kind in kinds:
            try:
                status = self.children.wait(f"train-{kind}", TRAIN_SECONDS)
            except subprocess.TimeoutExpired:
                raise DemoError(
                    f"training the {kind} model took over {TRAIN_SECONDS:.0f} s"
                ) from None
            if status != 0:
                raise DemoError(f"training the {kind} model failed: {tail(models / f'{kind}.log')}")

    def _first_kinds(self) -> set[str]:
        """The kinds of model bots begin with besides their own (the leaky one, or none)."""
        return {"leaky"} if self.leak_found_at else set()

    def _first_model(self, bot: Bot) -> str:
        """The kind of model a bot begins with: the exercise notebook's until it finds the leak."""
        leaky_still = bot.name in self.leak_found_at and bot.name not in self.leaks_found
        return "leaky" if leaky_still else bot.variant.model

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
        env = {k: v for k, v in os.environ.items() if k != ADMIN_TOKEN.env}  # never a bot's
        return {**env, **SINGLE_THREADED, **settings}

    def _start_bot(self, bot: Bot) -> None:
        """Start (or restart) one bot's process; its model is a copy of its kind's model."""
        model = bot.folder / "model.pkl"
        if not model.exists():
            bot.folder.mkdir(parents=True, exist_ok=True)
            self._deploy(bot, self._first_model(bot))  # its own file: careful retrains it
        env = self._env(
            HOST=HOST,
            PORT=str(bot.port),
            MODEL_PATH=str(model),
            MODEL_CHECK_SECONDS="1",
            DATABASE_URL=f"sqlite:///{bot.folder / 'predictions.sqlite'}",
            LOG_FILE=str(bot.folder / "api.log"),
            LOG_LEVEL="INFO",
            GAME_URL=self.game_url.rstrip("/"),
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
        bot.pid = self._start(bot.name, argv, env, bot.folder / "console.log")

    def _start(self, name: str, argv: list[str], env: dict, log_path: Path) -> int:
        """Start child `name`, output to `log_path`, in a process group of its own (a Ctrl-C
        in the terminal reaches only the demo, which stops it); its pid."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        command = Command(argv, env, log_path=log_path, group=True)
        return self.children.add(name, command)

    def _deploy(self, bot: Bot, kind: str) -> None:
        """Copy a kind's model to the bot's model file, atomically (its API reloads it)."""
        source = self.folder / "models" / f"{kind}.pkl"
        for suffix in (".json", ".pkl"):  # the file the API watches last
            temporary = bot.folder / f".model{suffix}.tmp"
            shutil.copy(source.with_suffix(suffix), temporary)
            os.replace(temporary, bot.folder / f"model{suffix}")

    async def find_leaks(self, elapsed: float) -> None:
        """At the exercise level: the bots whose moment came save the model without the leak."""
        for bot in self.bots:
            found_at = self.leak_found_at.get(bot.name)
            if found_at is not None and elapsed >= found_at and bot.name not in self.leaks_found:
                self.leaks_found.add(bot.name)
                await asyncio.to_thread(self._deploy, bot, bot.variant.model)
                self.echo(f"  {bot.name}: found the leak, serves a model without collection_calls")

    def wait_ready(self) -> None:
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

    async def flaky(self, elapsed: float) -> bool:
        """Take the flaky bots down at their time and back after their outage; True when
        they were just restarted (new process ids)."""
        down_at, down_for = self.flaky_down
        flaky = [bot for bot in self.bots if bot.variant.flaky]
        if not flaky:
            return False
        names = ", ".join(b.name for b in flaky)
        if self.flaky_state == "up" and elapsed >= down_at:
            self.flaky_state = "down"
            for bot in flaky:
                await asyncio.to_thread(self.children.stop, bot.name)
            self.echo(f"  {names}: API down (its process stopped), back in {down_for:.0f} s")
        elif self.flaky_state == "down" and elapsed >= down_at + down_for:
            self.flaky_state = "back"
            for bot in flaky:
                await asyncio.to_thread(self._start_bot, bot)
            self.echo(f"  {names}: API restarted")
            return True
        return False

    def report_exits(self) -> None:
        """Say once when a bot's process ended by itself (a crash)."""
        for name, status in self.children.exited().items():
            if name not in self.reported_exits:
                self.reported_exits.add(name)
                console = tail(self.folder / "bots" / name / "console.log")
                self.echo(f"  bot {name} exited (status {status}): {console}")

    def records(self) -> list[dict]:
        """Each bot's name, variant, port, URL, latest process id and, at the exercise level,
        when it finds the leak (seconds into the game), for demo.json."""
        return [
            {
                "name": b.name,
                "variant": b.variant.name,
                "port": b.port,
                "url": b.url,
                "pid": b.pid,
                "finds_leak_at": self.leak_found_at.get(b.name),
            }
            for b in self.bots
        ]
