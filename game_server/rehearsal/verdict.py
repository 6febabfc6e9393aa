"""The rehearsal's one verdict: did the server hold the peak, per phase what it cost, what
it would hold, and what to change.

Per phase (the game database's requests and results, the sampler's /proc samples cut by
the phase's first and last request): requests answered, failures, p95; the machine's CPU
headroom (idle share at the 90th percentile of busy) and its lowest available memory; the
teams' own CPU (cores) and memory. The largest number of teams is an estimate, from the
measured cost per team at the peak: 80 % of the cores and of the memory, each divided by
what one team (its share of the game's work included) used. The teams' and the game's own
processes are counted, not the rest of the machine (which the headroom shows).
"""

import os
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa

from game_server.common import sizing
from game_server.rehearsal.sampler import Sample, total_mb
from game_server.storage import database

HELD_FAILURES = 0.01  # the peak is held when at most 1 % of its requests fail...
HELD_P95 = 0.5  # ...and its p95 stays under half the game's timeout
USABLE = 0.8  # the share of the cores and of the memory a plan may count on


@dataclass(frozen=True)
class Phase:
    """One phase of the rehearsal's game, measured."""

    name: str
    kind: str
    results: int
    failed: int
    p95_ms: float
    cpu_headroom: float  # 0..1
    memory_headroom: float  # 0..1
    team_cores: float  # all teams' processes together
    team_mb: float
    machine_cores: float  # the whole machine busy (the teams, the game, anything else)
    game_cores: float = 0.0  # the game's processes
    start: float = 0.0  # the phase's first and last request (epoch seconds)
    end: float = 0.0


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def _rows(url: str) -> tuple[list[Any], list[Any]]:
    engine = database.make_engine(url)
    try:
        with engine.connect() as conn:
            phases = conn.execute(sa.text("select idx, name, kind from phases order by idx")).all()
            rows = conn.execute(
                sa.text(
                    "select q.phase_index, q.sent_at, r.outcome, r.latency_ms "
                    "from results r join requests q on q.seq = r.seq"
                )
            ).all()
    finally:
        engine.dispose()
    return list(phases), list(rows)


def _rate(samples: list[Sample], cpu_s: Any) -> float:
    """Cores used over `samples` by what `cpu_s(sample)` counts."""
    steps = zip(samples, samples[1:], strict=False)
    used = [max(0.0, cpu_s(b) - cpu_s(a)) / max(b.at - a.at, 1e-3) for a, b in steps]
    return sum(used) / len(used) if used else 0.0


def _cost(samples: list[Sample]) -> tuple[float, float, float, float, float, float]:
    """(cpu headroom, memory headroom, team cores, team MB, machine cores, game cores)."""
    cores = os.cpu_count() or 1
    if len(samples) < 2:
        return 1.0, 1.0, 0.0, 0.0, 0.0, 0.0
    busy = [s.busy for s in samples[1:]]
    return (
        1 - _percentile(busy, 0.9),
        min(s.available_mb for s in samples) / total_mb(),
        _rate(samples, lambda s: s.team_cpu_s),
        max(s.team_mb for s in samples),
        sum(busy) / len(busy) * cores,
        _rate(samples, lambda s: s.kinds.get("game", (0.0, 0.0, 0))[0]),
    )


def phases(url: str, samples: list[Sample]) -> list[Phase]:
    """Every phase of the game in `url`, measured."""
    defs, rows = _rows(url)
    out = []
    for idx, name, kind in defs:
        mine = [r for r in rows if r[0] == idx]
        if not mine:
            out.append(Phase(name, kind, 0, 0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0))
            continue
        first, last = min(r[1] for r in mine), max(r[1] for r in mine)
        window = [s for s in samples if first <= s.at <= last + 1.0]
        lat = [r[3] for r in mine if r[2] != "failed"]
        failed = sum(1 for r in mine if r[2] == "failed")
        p95 = _percentile(lat, 0.95)
        cost = _cost(window)
        out.append(Phase(name, kind, len(mine), failed, p95, *cost, start=first, end=last))
    return out


def held(phase: Phase, timeout_s: float) -> bool:
    """Whether a phase held: few failures and a p95 well under the timeout."""
    share = phase.failed / phase.results if phase.results else 1.0
    return share <= HELD_FAILURES and phase.p95_ms <= HELD_P95 * timeout_s * 1000


class Capacity(NamedTuple):
    """The teams a server would hold, an estimate from the measured cost per team."""

    by_cpu: int
    by_memory: int
    cores_per_team: float
    mb_per_team: float


def capacity(teams: int, peak: Phase, idle_mb: float) -> Capacity:
    """The teams by CPU and by memory, from the cost per team at the peak: an estimate."""
    cores = os.cpu_count() or 1
    # The average at the peak, or what its bursts need (make bench-capacity): a few teams'
    # average cannot show the bursts of many arriving at the same instant.
    measured = max(peak.team_cores + peak.game_cores, 1e-3) / teams
    per_team_cores = max(measured, sizing.BURST.cores_per_team)
    per_team_mb = max(peak.team_mb, 1.0) / teams
    by_cpu = int(USABLE * cores / per_team_cores)
    by_memory = int(USABLE * (idle_mb + peak.team_mb) / per_team_mb)
    return Capacity(by_cpu, by_memory, per_team_cores, per_team_mb)


class Verdict(NamedTuple):
    """The rehearsal's verdict: whether it held the peak, and the lines that say it."""

    held: bool
    lines: list[str]


def report(
    teams: int,
    level: str,
    measured: list[Phase],
    timeout_s: float,
    idle_mb: float,
    errors: list[str],
) -> Verdict:
    """Whether the server held the peak, and the verdict's lines."""
    peaks = [p for p in measured if p.kind == "peak"] or measured[-1:]
    peak = peaks[0]
    ok = held(peak, timeout_s) and not errors
    lines = [
        f"rehearsal verdict: {teams} team(s), starter level {level}: "
        + ("HELD the peak" if ok else "did NOT hold the peak")
    ]
    lines.append(
        "  phase                 answered  failed   p95 ms  CPU headroom  memory headroom"
        "  teams' CPU  teams' memory"
    )
    for p in measured:
        lines.append(
            f"  {p.name[:20]:<20} {p.results:>9} {p.failed:>7} {p.p95_ms:>8.1f} "
            f"{p.cpu_headroom:>12.0%} {p.memory_headroom:>16.0%} {p.team_cores:>9.2f} c "
            f"{p.team_mb:>10.0f} MB"
        )
    by_cpu, by_mem, cores, mb = capacity(teams, peak, idle_mb)
    most = min(by_cpu, by_mem)
    lines.append(
        f"  cost per team at the peak: {cores:.2f} cores (the game's share included), "
        f"{mb:.0f} MB (API, Jupyter, kernel)"
    )
    if not ok and most >= teams:  # what was measured beats what the average says
        most = max(teams - 1, 0)
        lines.append(
            f"  this server holds fewer than {teams} teams: the peak failed with {teams} "
            f"(the measured costs alone would say {min(by_cpu, by_mem)}: an average "
            f"misses the bursts and the retraining at the same time)"
        )
    else:
        lines.append(
            f"  this server would hold about {most} teams (an estimate from the measured "
            f"costs: {by_cpu} by CPU, {by_mem} by memory, counting on {USABLE:.0%} of each)"
        )
    lines += [f"  bot: {e}" for e in errors[:10]]
    lines.append("  what to change: " + advice(ok, teams, most, by_cpu, by_mem, peak, errors))
    return Verdict(ok, lines)


def advice(
    ok: bool, teams: int, most: int, by_cpu: int, by_mem: int, peak: Phase, errors: list[str]
) -> str:
    """One sentence the instructor can act on."""
    if errors:
        return (
            "a team's day failed (bot lines above): fix that first, it is what a "
            "participant would meet"
        )
    if not ok:
        short = "cores" if by_cpu <= by_mem else "memory"
        return (
            f"the peak failed at {teams} teams: rent more {short}, or split the room "
            f"over two servers (shards, docs/INSTRUCTOR.md); at most {most} fit here"
        )
    if most < teams * 1.2:
        return f"nothing, but little room is left: plan at most {most} teams here"
    return f"nothing: room for about {most} teams; rehearse again with the real number"
