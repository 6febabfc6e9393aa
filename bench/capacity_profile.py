"""What one starter API spends its time on during a game: py-spy, read into a few shares.

py-spy samples the API's process from outside (no change to the starter) while a game
runs, only when one of its threads holds the GIL (`--gil`): the samples are the
process's Python work, and their count over the game's length is the share of the time
the process kept the GIL (one core at most, whatever its thread count). Each sample's
stack is put in one part of the work: the model, the cleaning, the database writer,
logging, Flask, waitress.
"""

import os
import subprocess
import sys
import threading
from pathlib import Path

import capacity_fleet as fleet_mod  # beside this file

RATE = 100  # samples per second

# The parts of the work, by the files on a sample's stack; the first part that matches wins.
PARTS = (
    ("the model: scikit-learn `Pipeline.predict_proba` (pandas inside it)", ("/sklearn/",)),
    ("micro-batching: gathering rows, one frame", ("modules/batching.py",)),
    ("cleaning a request and its one-row pandas frame", ("modules/features.py", "/pandas/")),
    ("the database writer thread (SQLAlchemy, SQLite)", ("db_writer.py", "/sqlalchemy/")),
    ("logging a line per request", ("/logging/",)),
    ("Flask and Werkzeug: routing, JSON in and out", ("/flask/", "/werkzeug/", "/json/")),
    ("waitress: HTTP parsing, sockets, its threads", ("/waitress/",)),
)
OTHER = "other (the view's own lines, the interpreter)"


def parse(raw: str) -> list[tuple[list[str], int]]:
    """py-spy's raw output: (frames from the root, count) per distinct stack."""
    stacks = []
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def part_of(frames: list[str]) -> str:
    """The part of the work one stack belongs to."""
    for name, needles in PARTS:
        if any(needle in frame for frame in frames for needle in needles):
            return name
    return OTHER


def shares(stacks: list[tuple[list[str], int]]) -> dict[str, float]:
    """Each part's share of the samples, largest first."""
    total = sum(count for _, count in stacks) or 1
    parts: dict[str, int] = {}
    for frames, count in stacks:
        name = part_of(frames)
        parts[name] = parts.get(name, 0) + count
    return {k: v / total for k, v in sorted(parts.items(), key=lambda kv: -kv[1])}


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    """Start py-spy on `pid` for `seconds`, writing raw stacks to `out`."""
    command = [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw"]
    command += ["--gil", "--full-filenames", "--nonblocking", "-r", str(RATE)]
    command += ["-d", str(int(seconds)), "-o", str(out), "-p", str(pid)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def profile_trial(fleet: fleet_mod.Fleet, count: int, workdir: Path, seconds: float) -> dict:
    """A game with `count` teams while py-spy samples the fleet's first API."""
    fleet.grow(count)
    out = workdir / f"profile-{fleet.label}.txt"
    spied = int(seconds) - 2  # inside the game: it starts a second or so after py-spy
    pid = fleet.pid(0)
    cpu_before = cpu_seconds(pid)
    spy = record(pid, spied, out)
    result: dict = {}
    game = threading.Thread(
        target=lambda: result.update(fleet_mod.play(fleet, count, workdir, seconds))
    )
    game.start()
    game.join()
    cpu = cpu_seconds(pid) - cpu_before  # py-spy reads the process; it runs no code in it
    _, errors = spy.communicate(timeout=60)
    requests = result["results"] / count if count else 0
    result["cpu_ms"] = cpu * 1000 / requests if requests else 0.0
    if not out.exists():
        return {"trial": result, "error": (errors or "py-spy wrote nothing").strip()[-300:]}
    stacks = parse(out.read_text())
    samples = sum(count for _, count in stacks)
    return {
        "trial": result,
        "teams": count,
        "gil": samples / (RATE * spied),
        "shares": shares(stacks),
        "samples": samples,
    }


def finding(profile: dict, label: str) -> str:
    """The profile in words and a table."""
    trial = profile["trial"]
    cpu = f"**{trial['cpu_ms']:.1f} ms of CPU per request** (its process's CPU time over the game)"
    if "error" in profile:
        return f"The {label} starter: {cpu}; py-spy could not sample it ({profile['error']})."
    rows = "\n".join(f"| {name} | {share:.0%} |" for name, share in profile["shares"].items())
    return f"""The **{label}** starter, one API of {profile["teams"]} in a game (p95
{trial["p95"]:.0f} ms, {trial["failed"]} failed): {cpu}; a thread of it held the GIL
{profile["gil"]:.0%} of the time ({profile["samples"]:,} samples). Where that time went:

| part of the work | share of the samples |
|---|---|
{rows}"""


EXPLANATION = """\
Why the old starter runs out first: each request turns one applicant into a one-row
pandas DataFrame and sends it through the scikit-learn `Pipeline`, whose every step (the
`ColumnTransformer` splitting the frame, the imputers, the scaler, the encoder) pays a
fixed cost of checks and copies whatever the number of rows: one row costs about what a
hundred do. A burst puts 20 requests on each API, on every API at once; the 2 cores do
20 × N of those fixed costs one after the other, and the last answer of the burst waits
for all of them. The new starter gathers a burst's requests (`modules/batching.py`) and
sends them through the pipeline as one frame, so a burst pays the fixed cost once or a
few times instead of 20 times. The game sends a burst to every team one request after
the other, so an API's 20 requests arrive milliseconds apart over tens of milliseconds:
once a request has company, the batcher keeps gathering as long as the next one comes
within two `BATCH_WINDOW_MS` windows of the previous one (at most 20 windows in all),
instead of closing the batch one window after its first request (the starter of issue 16
did that, and cut a burst into several batches; a request alone still waits one window).
Its waitress has 32 threads instead of 8, so that the whole burst is in the API at once.
The batch's frame takes its numeric columns as numpy arrays, not a pandas Series each,
and the database writer waits 0.2 s for a burst's records and saves them in one
transaction instead of one per record or two."""
