"""`make bench-rehearsal`: the dress rehearsal on this machine, and what one team costs.

    python bench/rehearsal_bench.py [--teams N] [--levels complete,exercises] [--minutes M]

As root: runs `game-server rehearse` (game_server/rehearsal/) with N bot teams at each
starter level against a throwaway sshd (tests/sshd_server.py) and the teams' venv of
`scripts/setup_server.sh` (run first when it is missing). From the rehearsal's /proc
samples it derives the cost of one team: the API idle (warm-up) and at the peak, Jupyter,
a notebook's kernel, a training run (the morning), and the whole team at the peak with its
share of the game's work. Writes docs/PERFORMANCE.md's "Rehearsal" section and the sizing
table of docs/INSTRUCTOR.md (`--no-write`: print only). The anchor in the same run: the
machine's own busy share and available memory before the teams exist.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import sizing_table  # noqa: E402
from performance_doc import write_section  # noqa: E402
from sshd_server import sshd  # noqa: E402
from stopping import on_sigterm_clean_up  # noqa: E402

from game_server.common import sizing  # noqa: E402
from game_server.rehearsal.run import Options, Result, rehearse  # noqa: E402
from game_server.rehearsal.sampler import Sample, cpu_times, total_mb  # noqa: E402


def window(result: Result, kind: str) -> list:
    """The samples of the first phase of `kind` (its first to its last request)."""
    phase = next((p for p in result.phases if p.kind == kind), None)
    return [s for s in result.samples if phase and phase.start <= s.at <= phase.end + 1.0]


def rate(samples: list, kinds: tuple[str, ...]) -> float:
    """Cores the processes of `kinds` used over `samples` (CPU seconds / seconds)."""
    if len(samples) < 2:
        return 0.0

    def cpu(s: Sample) -> float:  # noqa: E306
        return sum(s.kinds.get(k, (0.0, 0.0, 0))[0] for k in kinds)

    steps = zip(samples, samples[1:], strict=False)
    used = [max(0.0, cpu(b) - cpu(a)) for a, b in steps]
    return sum(used) / max(samples[-1].at - samples[0].at, 1e-3)


def peak_mb(samples: list, kinds: tuple[str, ...]) -> float:
    """The most memory the processes of `kinds` held together over `samples`."""
    return max((sum(s.kinds.get(k, (0, 0.0, 0))[1] for k in kinds) for s in samples), default=0.0)


def costs(result: Result, teams: int) -> dict:
    """One team's cost, from a rehearsal's samples."""
    morning = [s for s in result.samples if result.morning[0] <= s.at <= result.morning[1]]
    warm, peak = window(result, "warmup"), window(result, "peak")
    whole = [s for s in result.samples if s.at > result.morning[1]]
    peak_phase = next(p for p in result.phases if p.kind == "peak")
    training_cpu = max(
        (sum(s.kinds.get(k, (0.0, 0, 0))[0] for k in ("training", "kernel")) for s in morning),
        default=0.0,
    )
    return {
        "api_idle_cores": rate(warm, ("api",)) / teams,
        "api_idle_mb": peak_mb(warm, ("api",)) / teams,
        "api_peak_cores": rate(peak, ("api",)) / teams,
        "api_peak_mb": peak_mb(peak, ("api",)) / teams,
        "jupyter_mb": peak_mb(whole, ("jupyter",)) / teams,
        "kernel_mb": peak_mb(morning, ("kernel",)) / teams,
        "training_cpu_s": training_cpu / teams,
        "training_mb": peak_mb(morning, ("training", "kernel")) / teams,
        "team_peak_cores": (peak_phase.team_cores + peak_phase.game_cores) / teams,
        "team_peak_mb": peak_phase.team_mb / teams,
        "morning_s": result.morning[1] - result.morning[0],
    }


def anchor(seconds: float = 5.0) -> tuple[float, float]:
    """The machine before the rehearsal: busy cores, and MB in use."""
    b0, t0 = cpu_times()
    time.sleep(seconds)
    b1, t1 = cpu_times()
    avail = (
        float(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemAvailable:")
            )
        )
        / 1024
    )
    return (b1 - b0) / (t1 - t0) * (os.cpu_count() or 1), total_mb() - avail


def team_venv_ready() -> None:
    """The teams' venv of setup_server.sh, made when it is missing."""
    if not Path("/opt/workshop/venv/bin/jupyter").exists():
        print("rehearsal bench: running scripts/setup_server.sh (the teams' venv)", flush=True)
        subprocess.run(["bash", str(ROOT / "scripts" / "setup_server.sh")], check=True)


def run_level(level: str, teams: int, minutes: float) -> tuple[Result, dict]:
    """One rehearsal at `level`, and one team's cost from it."""
    with tempfile.TemporaryDirectory() as folder, sshd(Path(folder)) as ssh:
        result = rehearse(
            Options(
                teams,
                level,
                minutes,
                ssh.port,
                ssh.known_hosts,
                echo=lambda line: print(line, flush=True),
            )
        )
    if result.interrupted:  # stopped (Ctrl-C, SIGTERM): no next level, no doc written
        raise SystemExit(f"rehearsal bench: interrupted at the {level} level, cleaned up")
    return result, (costs(result, teams) if result.phases else {})


def section(runs: dict, teams: int, minutes: float, base: tuple[float, float]) -> str:
    """docs/PERFORMANCE.md's section."""
    cores, mb = os.cpu_count(), total_mb()
    lines = [
        "## Rehearsal: a workshop day of bot teams on this machine (`bench/rehearsal_bench.py`)",
        "",
        f"`make bench-rehearsal`: `game-server rehearse --teams {teams}` at the "
        f"{' and '.join(runs)} level on this machine ({cores} cores, {mb / 1024:.0f} GB), a "
        f"{minutes:g}-minute compressed game (every phase, the peak at its full rate). Anchor, "
        f"the same run before the teams: the machine busy {base[0]:.2f} cores, {base[1]:.0f} "
        "MB in use. One team's cost (each figure divided by the teams):",
        "",
        "| level | held the peak | peak p95 ms | API idle | API at the peak | Jupyter | "
        "kernel | training run | whole team at the peak (game's share included) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for level, (result, c) in runs.items():
        if not c:
            lines.append(f"| {level} | no result (see the run's output) | | | | | | | |")
            continue
        peak = next(p for p in result.phases if p.kind == "peak")
        lines.append(
            f"| {level} | {'yes' if result.ok else 'NO'} | {peak.p95_ms:.0f} | "
            f"{c['api_idle_cores']:.3f} cores, {c['api_idle_mb']:.0f} MB | "
            f"{c['api_peak_cores']:.3f} cores, {c['api_peak_mb']:.0f} MB | "
            f"{c['jupyter_mb']:.0f} MB | {c['kernel_mb']:.0f} MB | "
            f"{c['training_cpu_s']:.1f} CPU s, {c['training_mb']:.0f} MB | "
            f"{c['team_peak_cores']:.2f} cores, {c['team_peak_mb']:.0f} MB |"
        )
    others = [lv for lv in sizing.MEASURED if lv not in runs]
    if others:
        lines += ["", f"The sizing table's {', '.join(others)} cost is from an earlier run."]
    lines += ["", "The rehearsal's verdict, per level:", ""]
    for result, _ in runs.values():
        lines += ["```text", *result.lines, "```", ""]
    return "\n".join(lines)


def cost_of(c: dict, base_mb: float) -> sizing.Cost:
    """A team's cost for the sizing table: its share of the machine at the peak, and its
    memory with everyone retraining at once (the API, Jupyter, a training run)."""
    mb = c["api_peak_mb"] + c["jupyter_mb"] + c["training_mb"]
    return sizing.Cost(
        round(c["team_peak_cores"], 3), round(max(mb, c["team_peak_mb"])), round(base_mb)
    )


def write_sizing(costs_by_level: dict[str, sizing.Cost]) -> None:
    """The measured costs into game_server/common/sizing.py (what `doctor --teams` reads)."""
    path = ROOT / "game_server" / "common" / "sizing.py"
    costs_by_level = {**sizing.MEASURED, **costs_by_level}  # a level not run keeps its cost
    body = "".join(
        f'    "{lv}": Cost(cores={c.cores}, mb={c.mb}, base_mb={c.base_mb}),\n'
        for lv, c in costs_by_level.items()
    )
    text = re.sub(
        r"(MEASURED = \{\n).*?(\})",
        lambda m: m[1] + body + m[2],
        path.read_text(),
        count=1,
        flags=re.S,
    )
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teams", type=int, default=2)
    parser.add_argument("--levels", default="complete,exercises")
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    on_sigterm_clean_up()
    if os.geteuid() != 0:
        raise SystemExit("rehearsal bench: run as root (it creates Linux users)")
    team_venv_ready()
    base = anchor()
    runs = {lv: run_level(lv, args.teams, args.minutes) for lv in args.levels.split(",")}
    for level, (_, c) in runs.items():
        print(f"rehearsal bench: {level}: {c}", flush=True)
    text = section(runs, args.teams, args.minutes, base)
    costs_by_level = {lv: cost_of(c, base[1]) for lv, (_, c) in runs.items() if c}
    print(text + "\n" + str(costs_by_level))
    if not args.no_write and costs_by_level:
        write_section("Rehearsal", text)
        write_sizing(costs_by_level)
        sizing_table.write()


if __name__ == "__main__":
    main()
