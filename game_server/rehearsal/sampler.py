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

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Sample:
    """One moment: the machine's busy share (0..1), available MB; the teams' CPU s, MB."""

    at: float
    busy: float
    available_mb: float
    team_cpu_s: float
    team_mb: float


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields) - idle, sum(fields)


def available_mb() -> float:
    """MemAvailable, in MB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return float(line.split()[1]) / 1024
    return 0.0


def total_mb() -> float:
    """MemTotal, in MB."""
    return float(Path("/proc/meminfo").read_text().split()[1]) / 1024


def users_cost(uids: set[int]) -> tuple[float, float]:
    """(CPU seconds, resident MB) of the live processes of `uids`."""
    cpu = rss = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid not in uids:
                continue
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2 :].split()
        cpu += (float(rest[11]) + float(rest[12])) / TICKS  # utime, stime
        rss += float(rest[21]) * PAGE / 2**20
    return cpu, rss


@dataclass
class Sampler:
    """Samples in a thread from `start()` to `stop()`."""

    uids: set[int]
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
            cpu, mb = users_cost(self.uids)
            self.samples.append(Sample(time.time(), share, available_mb(), cpu, mb))
