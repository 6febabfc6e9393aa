"""What the rehearsal costs the machine: CPU and memory, all of it and per team, over time.

A thread samples /proc every `interval` seconds: the machine's busy CPU share and
available memory, and for the rehearsal's team users the CPU seconds and resident memory
of their processes (the API, Jupyter and its kernel, training runs). Each sample carries
its time, so the verdict can cut them by phase.
"""

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# What a team's process is, by its command line: the API, Jupyter, a notebook's kernel, a
# training run (nbconvert), the rest (shells, tmux, curl).
KINDS = (
    ("api", "main.py"),
    ("kernel", "ipykernel"),
    ("training", "nbconvert"),
    ("jupyter", "jupyter"),
)


@dataclass(frozen=True)
class Sample:
    """One moment: the machine's busy share (0..1), available MB; the teams' CPU s, MB."""

    at: float
    busy: float
    available_mb: float
    team_cpu_s: float
    team_mb: float
    kinds: dict[str, tuple[float, float, int]]  # kind -> (CPU s, MB, processes)


def kind_of(cmdline: bytes) -> str:
    """The kind of a team's process (KINDS), or "other"."""
    text = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return next((kind for kind, word in KINDS if word in text), "other")


class CpuTimes(NamedTuple):
    """Jiffies of all CPUs since boot: busy ones and all."""

    busy: float
    total: float


def cpu_times() -> CpuTimes:
    """The busy and total jiffies of all CPUs since boot."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return CpuTimes(sum(fields) - idle, sum(fields))


def available_mb() -> float:
    """MemAvailable, in MB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return float(line.split()[1]) / 1024
    return 0.0


def total_mb() -> float:
    """MemTotal, in MB."""
    return float(Path("/proc/meminfo").read_text().split()[1]) / 1024


def users_cost(uids: set[int], game: int | None = None) -> dict[str, tuple[float, float, int]]:
    """Per kind of process of `uids`: (CPU seconds, resident MB, how many), live ones; the
    process `game` and its children as kind "game"."""
    out: dict[str, tuple[float, float, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            rest = stat[stat.rindex(")") + 2 :].split()
            if game is not None and game in (int(entry), int(rest[1])):
                kind = "game"
            elif os.stat(f"/proc/{entry}").st_uid in uids:
                kind = kind_of(Path(f"/proc/{entry}/cmdline").read_bytes())
            else:
                continue
        except (OSError, ValueError):
            continue
        cpu = (float(rest[11]) + float(rest[12])) / TICKS  # utime, stime
        rss = float(rest[21]) * PAGE / 2**20
        old = out.get(kind, (0.0, 0.0, 0))
        out[kind] = (old[0] + cpu, old[1] + rss, old[2] + 1)
    return out


@dataclass
class Sampler:
    """Samples in a thread from `start()` to `stop()`."""

    uids: set[int]
    game: int | None = None  # the game's process, once it runs
    interval: float = 1.0
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="rehearsal-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def _loop(self) -> None:
        busy0, total0 = cpu_times()
        while not self._stop.wait(self.interval):
            busy1, total1 = cpu_times()
            share = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
            busy0, total0 = busy1, total1
            kinds = users_cost(self.uids, self.game)
            teams = [v for k, v in kinds.items() if k != "game"]
            cpu, mb = sum(k[0] for k in teams), sum(k[1] for k in teams)
            self.samples.append(Sample(time.time(), share, available_mb(), cpu, mb, kinds))
