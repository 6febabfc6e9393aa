"""Does retraining pay? The builtin games' drift, measured with the demo's real bots.

For each builtin game and each seed it plays a whole demo game (`game-server demo`, two
bots: `starter`, which never retrains, and `careful`, which retrains on the labels the game
reveals), from a copy of the game file that differs only in its seed (the demo at its own
5 minutes, the workshop compressed). It then reads the game's database: the points per
scored request of each bot in each phase (the drift phase also in halves), beside the
baseline's and the oracle's expected points. The table (mean and spread over the seeds)
goes into docs/GAMEFILE.md, section "The drift phase, measured".

The bench holds `/tmp/heavy.lock` (flock) for all its games, so no other heavy job runs
beside them: the bots answer within the game's timeout, and the points measure the models,
not a busy machine.

    .venv/bin/python bench/drift_bench.py                    # about 27 minutes
    .venv/bin/python bench/drift_bench.py --games demo --seeds 1 --no-doc
"""

import argparse
import fcntl
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "GAMEFILE.md"
LOCK = "/tmp/heavy.lock"
BEGIN, END = "<!-- drift-bench begin -->", "<!-- drift-bench end -->"
GAMES = REPO / "game_server" / "scenario" / "games"
# Seconds each game is played in. The demo runs at its own length: compressed, its drift
# phase is over before the careful bot has retrained more than two or three times (each
# try takes it 5-8 s on a busy 2-core machine). The workshop's hour cannot be played here:
# at 200 s its drift phase keeps ~200 rounds and a 3.3 s label delay, too few labels for
# the careful bot to catch up (bench/drift_offline.py shows the full-length picture).
DURATIONS = {"demo": 300.0, "workshop": 200.0}
PLAYERS = ("starter", "careful", "baseline", "oracle")
LABELS = {
    "starter": "starter (never retrains)",
    "careful": "careful (retrains)",
    "baseline": "baseline",
    "oracle": "oracle",
}


def seeded_copy(game: str, seed: int, folder: Path) -> Path:
    """A copy of a builtin game file with another seed (everything else byte for byte)."""
    text = (GAMES / f"{game}.toml").read_text()
    new, count = re.subn(r"(?m)^seed\s*=\s*\d+", f"seed = {seed}", text, count=1)
    if count != 1:
        raise SystemExit(f"{game}.toml has no `seed = N` line to replace")
    path = folder / f"{game}-seed{seed}.toml"
    path.write_text(new)
    return path


def play(game_file: Path, duration: float, folder: Path) -> Path:
    """Play one demo game with the starter and careful bots; the path of its database."""
    exe = Path(sys.executable).with_name("game-server")
    command = [str(exe), "demo", "--game", str(game_file)]
    command += ["--teams", "2", "--duration", f"{duration:g}", "--port", "0", "--no-browser"]
    began = time.monotonic()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"demo failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    found = re.search(r"demo folder: (\S+)", done.stdout)
    if not found:
        raise SystemExit("the demo did not print its folder")
    print(f"  played {game_file.name} in {time.monotonic() - began:.0f} s", flush=True)
    return folder / found.group(1) / "game.sqlite"


def read_points(database: Path) -> dict[str, dict[str, float]]:
    """Per phase name: points per scored request of each bot, the baseline and the oracle.

    The last phase (the drift) is also split in halves by the time its requests were
    sent: the second half shows a retrained model, the first its labels still to come.
    """
    with sqlite3.connect(database) as db:
        phases = dict(db.execute("SELECT idx, name FROM phases"))
        last = max(phases)
        rows = db.execute(
            "SELECT r.phase_index, r.sent_at, r.baseline_points, r.oracle_points, t.name,"
            " x.points FROM requests r JOIN results x ON x.seq = r.seq"
            " JOIN teams t ON t.id = x.team_id WHERE r.status = 'scored' ORDER BY r.seq"
        ).fetchall()
    sent = [at for index, at, *_ in rows if index == last]
    middle = (min(sent) + max(sent)) / 2
    groups: dict[str, dict[str, list[float]]] = {}
    for index, at, baseline, oracle, team, points in rows:
        names = [phases[index]]
        if index == last:
            names.append(f"{phases[index]}, {'1st' if at < middle else '2nd'} half")
        for name in names:
            group = groups.setdefault(name, {p: [] for p in PLAYERS})
            if team in group:
                group[team].append(points)
            if team == PLAYERS[0]:  # the reference points once per request
                group["baseline"].append(baseline)
                group["oracle"].append(oracle)
    return {
        name: {player: statistics.mean(values) for player, values in group.items()}
        for name, group in groups.items()
    }


def table(game: str, runs: list[dict], seeds: list[int], duration: float) -> str:
    """A markdown table: mean ± spread (standard deviation) over the seeds, per phase."""
    head = "| phase | " + " | ".join(LABELS[p] for p in PLAYERS) + " |"
    lines = [
        f"**{game}** (played in {duration:g} s, seeds {', '.join(map(str, seeds))}; "
        "points per scored request, mean ± standard deviation over the seeds)",
        "",
        head,
        "|---" * (len(PLAYERS) + 1) + "|",
    ]
    for phase in runs[0]:
        cells = []
        for player in PLAYERS:
            values = [run[phase][player] for run in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} ± {spread:.3f}")
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_doc(body: str) -> None:
    """Replace the text between the markers of docs/GAMEFILE.md."""
    text = DOC.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + "\n" + body + "\n" + text[end:])


def main() -> None:
    """Play every game and seed, print the tables, write them into the doc."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--games", nargs="+", default=list(DURATIONS), choices=list(DURATIONS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--no-doc", action="store_true", help="print only, leave the doc")
    args = parser.parse_args()
    tables = []
    with open(LOCK, "a") as lock, tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp:
        print(f"waiting for {LOCK} (other heavy jobs first)", flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, at the end
        for game in args.games:
            runs = []
            for seed in args.seeds:
                folder = Path(tmp) / f"{game}-{seed}"
                folder.mkdir()
                database = play(seeded_copy(game, seed, folder), DURATIONS[game], folder)
                runs.append(read_points(database))
                drift = list(runs[-1].values())[-1]
                print(f"  {game} seed={seed} last phase: {drift}", flush=True)
            tables.append(table(game, runs, args.seeds, DURATIONS[game]))
            print(tables[-1] + "\n", flush=True)
    command = "make bench-drift  # .venv/bin/python bench/drift_bench.py " + " ".join(
        ["--games", *args.games, "--seeds", *map(str, args.seeds)]
    )
    body = "\n\n".join([f"Measured with `{command}`:", *tables])
    if not args.no_doc:
        write_doc(body)
        print(f"written to {DOC}")


if __name__ == "__main__":
    main()
