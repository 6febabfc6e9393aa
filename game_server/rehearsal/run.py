"""The rehearsal from start to end: provision, the day, the game, the verdict, clean up.

Everything the rehearsal makes lives in a private work folder (0700: the roster, the
teams' SSH key, the handout, the registry, a game database of its own) and under a prefix
of its own (`rhXXXX-`: users, roles, schemas), so the real teams, registry and game are
never touched. The clean-up runs in a `finally` (Ctrl-C and SIGTERM included): `users
delete` of every rehearsal team, then a check that no user, home, role, profile or limit
of the prefix is left, then the work folder goes.
"""

import concurrent.futures
import logging
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from game_server.accounts import limits, provision, teardown
from game_server.accounts.config import Settings
from game_server.accounts.executors import LocalExecutor
from game_server.accounts.progress import still_to_go
from game_server.rehearsal import gameplan, readme, verdict
from game_server.rehearsal.bots import Bot
from game_server.rehearsal.sampler import Sampler, available_mb

log = logging.getLogger(__name__)

RETRAIN_KINDS = ("shift", "drift")  # the phases after which a team retrains (README step 6)
# A phase the teams retrain in lasts until every team has retrained (then `play` moves the
# game on), at most this long: a real 12-minute phase has room for a room's retraining; a
# compressed one would push it, and the APIs' restarts, into the next phase, the peak.
RETRAIN_ROOM = 600.0


@dataclass
class Options:
    """What `game-server rehearse` was asked."""

    teams: int
    level: str = "complete"
    minutes: float = 6.0
    ssh_port: int = 22
    known_hosts: str | None = None
    settings: Settings = field(default_factory=Settings)  # psql admin, venv, limits, ...
    echo: Callable[[str], Any] = print


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pinned_hosts(work: Path, port: int, given: str | None) -> Path:
    """known_hosts for the bots: the given file, or this server's own host keys."""
    if given:
        return Path(given)
    out = work / "known_hosts"
    keys = [p.read_text().split()[:2] for p in sorted(Path("/etc/ssh").glob("ssh_host_*_key.pub"))]
    out.write_text("".join(f"[127.0.0.1]:{port} {kind} {key}\n" for kind, key in keys))
    return out


def _game_state(db: Path) -> tuple[str | None, int]:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            row = conn.execute("select state, phase_index from games").fetchone()
    except sqlite3.Error:
        return None, 0
    return (row[0], int(row[1])) if row else (None, 0)


def _terminate(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


class Rehearsal:
    """One rehearsal's state: its folder, prefix, settings, bots and game."""

    def __init__(self, opts: Options) -> None:
        self.opts, self.echo = opts, opts.echo
        self.work = Path(tempfile.mkdtemp(prefix="rehearsal-"))  # 0700
        self.db = self.work / "game.sqlite"
        self.prefix = f"rh{secrets.token_hex(2)}-"
        self.game_cmd = [sys.executable, "-m", "game_server", "--db", f"sqlite:///{self.db}"]
        self.port = free_port()
        s = opts.settings
        s.prefix, s.registry, s.handout_dir = (
            self.prefix,
            str(self.work / "accounts.json"),
            str(self.work / "handout"),
        )
        s.game_cmd, s.game_url, s.starter_level = (
            self.game_cmd,
            f"http://127.0.0.1:{self.port}",
            (opts.level),
        )
        s.ssh_port, s.known_hosts = opts.ssh_port, opts.known_hosts
        self.settings, self.ex = s, LocalExecutor()
        self.bots: list[Bot] = []
        self.game: subprocess.Popen | None = None
        self.phases: list[dict[str, Any]] = []
        self.longest = 0.0  # the game's length if each retraining phase waits its most

    def prepare_game(self) -> None:
        self.phases = gameplan.compressed(self.opts.minutes).phases  # the planned lengths
        room = dict.fromkeys(RETRAIN_KINDS, RETRAIN_ROOM)
        text, longest = gameplan.compressed(self.opts.minutes, floors=room)
        self.longest = sum(float(p["duration"]) for p in longest)
        path = self.work / "game.toml"
        path.write_text(text)
        subprocess.run(
            [*self.game_cmd, "init", "--game", str(path)], check=True, capture_output=True
        )

    def provision(self) -> None:
        """Every team through `users create`, one roster line at a time (progress N of M)."""
        key = self.work / "team_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        public = key.with_suffix(".pub").read_text().strip()
        hosts = _pinned_hosts(self.work, self.opts.ssh_port, self.opts.known_hosts)
        n, started = self.opts.teams, time.monotonic()
        for i in range(1, n + 1):
            roster = self.work / f"roster-{i}.csv"
            roster.write_text(f"name,members,ssh_key\nRehearsal {i:02d},bot,{public}\n")
            provision.create(self.ex, self.settings, str(roster), echo=lambda line: None)
            user = f"{self.prefix}rehearsal-{i:02d}"
            self.bots.append(Bot(user, key, self.opts.ssh_port, hosts))
            to_go = still_to_go(time.monotonic() - started, i, n)
            self.echo(f"rehearse: provisioned {i} of {n} ({user}){to_go}")

    def each(self, name: str, action: Callable[[Bot], Any]) -> None:
        """`action` for every bot at once (a room of teams typing at the same time)."""
        pool = concurrent.futures.ThreadPoolExecutor(len(self.bots) or 1)
        n, started = len(self.bots), time.monotonic()
        try:  # on Ctrl-C, no waiting: the clean-up's `pkill -u` ends the bots' sessions
            for i, _ in enumerate(pool.map(action, self.bots), 1):
                to_go = still_to_go(time.monotonic() - started, i, n)
                self.echo(f"rehearse: {name}: {i} of {n} done{to_go}")
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def morning(self) -> None:
        """Each team's day before the game: the README up to the feedback step."""
        before, _ = readme.day_scripts()
        if self.opts.level != "complete":
            self.each("exercises filled in", lambda bot: bot.fill_exercises())
        self.each("trained, API up, self-check", lambda bot: bot.run("morning", before, 900))

    def start_game(self) -> None:
        log_file = (self.work / "game.log").open("w")
        self.game = subprocess.Popen(
            [*self.game_cmd, "run", "--port", str(self.port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _game_state(self.db)[0] != "lobby":
            time.sleep(0.5)
        time.sleep(2)  # the web process up
        subprocess.run([*self.game_cmd, "control", "start"], check=True, capture_output=True)

    def play(self) -> None:
        """The game, start to end; the teams retrain after the shift and the drift begin,
        and such a phase ends once they all have (and its planned length has passed)."""
        _, during = readme.day_scripts()
        deadline = time.monotonic() + self.longest + 120
        waves: dict[int, tuple[float, list[concurrent.futures.Future[bool]]]] = {}
        moved_on: set[int] = set()
        pool, finished = concurrent.futures.ThreadPoolExecutor(len(self.bots) or 1), False
        try:
            while time.monotonic() < deadline:
                state, index = _game_state(self.db)
                if state == "finished":
                    break
                kind = self.phases[index]["kind"] if index < len(self.phases) else ""
                if state == "running" and kind in RETRAIN_KINDS and index not in waves:
                    self.echo(f"rehearse: phase {self.phases[index]['name']}: teams retrain")
                    wave = [pool.submit(bot.run, "retrain", during, 600) for bot in self.bots]
                    waves[index] = (time.monotonic(), wave)
                on = state == "running" and index in waves and index not in moved_on
                if on and self._retrained(index, *waves[index]):
                    moved_on.add(index)
                time.sleep(1)
            else:
                self.echo("rehearse: the game did not finish in time")
            finished = True
        finally:  # the retrainings under way end (a bot's run has its own deadline)
            pool.shutdown(wait=finished, cancel_futures=True)

    def _retrained(
        self, index: int, started: float, wave: list[concurrent.futures.Future[bool]]
    ) -> bool:
        """Move the game on when every team has retrained and the phase's planned length
        has passed; True when it did."""
        took = time.monotonic() - started
        if took < float(self.phases[index]["duration"]) or not all(f.done() for f in wave):
            return False
        # Not checked: at the phase's most (RETRAIN_ROOM) the game may have moved on itself.
        subprocess.run([*self.game_cmd, "control", "next-phase"], capture_output=True)
        self.echo(
            f"rehearse: phase {self.phases[index]['name']}: every team retrained, "
            f"the game goes on after {took:.0f} s"
        )
        return True

    def stop_game(self) -> None:
        if self.game is not None and self.game.poll() is None:
            self.game.send_signal(signal.SIGTERM)
            try:
                self.game.wait(30)
            except subprocess.TimeoutExpired:
                self.game.kill()
                self.game.wait()

    def uids(self) -> set[int]:
        return {int(u) for bot in self.bots if (u := limits.uid_of(self.ex, bot.user))}

    def leftovers(self) -> list[str]:
        """Whatever of the prefix is still on the machine (users, homes, files, roles)."""
        p = self.prefix
        found = [
            line.split(":")[0]
            for line in Path("/etc/passwd").read_text().splitlines()
            if line.startswith(p)
        ]
        patterns = [
            f"/home/{p}*",
            f"{self.settings.profile_dir}/workshop-{p}*",
            f"{limits.LIMITS_D}/workshop-{p}*",
            f"/sys/fs/cgroup/*/workshop-{p}*",
        ]
        for pattern in patterns:
            found += [str(path) for path in Path("/").glob(pattern.lstrip("/"))]
        sql = f"select rolname from pg_roles where rolname like '{p}%'"
        rc, out, _ = self.ex.run(
            [*self.settings.psql("postgres"), "-Atc", sql], root=False, check=False
        )
        found += [f"role {r}" for r in out.split()] if rc == 0 else ["(roles: psql failed)"]
        return found

    def clean_up(self) -> bool:
        """Delete every rehearsal team, check nothing is left, remove the work folder."""
        self.stop_game()
        self.echo(f"rehearse: deleting the {len(self.bots)} rehearsal team(s)")
        try:
            teardown.delete(self.ex, self.settings, None, echo=lambda line: None)
        except Exception as exc:  # noqa: BLE001 (the check below says what is left)
            self.echo(f"rehearse: delete failed: {exc}")
        left = self.leftovers()
        if left:
            self.echo(f"rehearse: LEFT BEHIND (remove by hand): {', '.join(left)}")
        else:
            self.echo("rehearse: cleaned up: no rehearsal account, home, role or file is left")
        shutil.rmtree(self.work, ignore_errors=True)
        return not left


@dataclass
class Result:
    """What a rehearsal measured (for `make bench-rehearsal`) and how it ended."""

    ok: bool = False
    clean: bool = False
    phases: list[verdict.Phase] = field(default_factory=list)
    samples: list[Any] = field(default_factory=list)
    morning: tuple[float, float] = (0.0, 0.0)  # the teams' training, API start, self-check
    idle_mb: float = 0.0
    lines: list[str] = field(default_factory=list)
    interrupted: bool = False  # by Ctrl-C or SIGTERM: cleaned up, nothing measured


def rehearse(opts: Options) -> Result:
    """The whole rehearsal; `.ok` when it held the peak and left nothing behind."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    r, result = Rehearsal(opts), Result()
    sampler: Sampler | None = None
    try:
        r.prepare_game()
        r.provision()
        result.idle_mb = available_mb()
        sampler = Sampler(r.uids())
        sampler.start()
        started = time.time()
        r.morning()
        result.morning = (started, time.time())
        r.start_game()
        sampler.game = r.game.pid if r.game else None
        planned = sum(float(p["duration"]) for p in r.phases)
        r.echo(f"rehearse: the game runs ({planned:.0f} s, and as long as the teams retrain)")
        r.play()
        sampler.stop()
        result.samples = sampler.samples
        result.phases = verdict.phases(f"sqlite:///{r.db}", sampler.samples)
        timeout = float(gameplan.game_settings(r.work / "game.toml").get("timeout", 1.0))
        errors = [f"{bot.user}: {e}" for bot in r.bots for e in bot.errors]
        said = verdict.report(
            opts.teams, opts.level, result.phases, timeout, result.idle_mb, errors
        )
        result.lines = said.lines
        for line in result.lines:
            r.echo(line)
        result.ok = said.held
    except KeyboardInterrupt:
        r.echo("rehearse: interrupted: cleaning up")
        result.interrupted = True
    finally:
        if sampler is not None:
            sampler.stop()
        result.clean = r.clean_up()
        signal.signal(signal.SIGTERM, previous)
    result.ok = result.ok and result.clean
    return result
