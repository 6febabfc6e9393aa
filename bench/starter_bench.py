"""Benchmark of the participant starter: what the API adds to the model's own time.

Not a test. Loopback only, bounded in time, stops by itself. In a temporary copy of the
starter it runs the training notebook (as a team does), serves the model with
`python main.py` (waitress, logging every request to SQLite through the
background writer), then measures in the same run:

1. the bare model: `pipeline.predict` on one ready-made row, and the cleaning of one
   request (`clean_features`), in this process;
2. `POST /predict` latency, one request at a time on a keep-alive connection (p50, p99),
   and the API's overhead over the bare model;
3. throughput with several clients at once (threads with keep-alive sessions; the
   clients share the machine's cores with the server).

Prints a table and writes it into docs/PERFORMANCE.md ("Participant starter" section).

    python bench/starter_bench.py [--requests 2000] [--seconds 10] [--clients 8] [--no-write]
"""

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import performance_doc  # beside this file
import requests
import stopping

ROOT = Path(__file__).resolve().parent.parent
STARTER = ROOT / "participant_starter"


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def prepare(workdir: Path) -> Path:
    """A copy of the starter with the data, trained by its own notebook in a real kernel."""
    import nbformat
    from nbclient import NotebookClient

    starter = workdir / "starter"
    shutil.copytree(
        STARTER, starter, ignore=shutil.ignore_patterns("__pycache__", ".env", "*.pkl", "*.sqlite")
    )
    shutil.copy(ROOT / "data" / "train_data.csv", starter / "data" / "train_data.csv")
    path = starter / "notebooks" / "1.0-train-model.ipynb"
    notebook = nbformat.read(path, as_version=4)
    resources = {"metadata": {"path": str(path.parent)}}  # run it from notebooks/
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources=resources).execute()
    return starter


def sample_requests(starter: Path, count: int) -> list[dict]:
    """Clean request features: training rows as the customer would send them."""
    import pandas as pd

    features = json.loads((starter / "models" / "model.json").read_text())["features"]
    data = pd.read_csv(starter / "data" / "train_data.csv", usecols=features).sample(
        count, random_state=1, replace=True
    )
    return [
        {k: None if pd.isna(v) else v for k, v in row.items()} for row in data.to_dict("records")
    ]


def bare_model(starter: Path, bodies: list[dict]) -> dict:
    """Per-call times (ms) of pipeline.predict on one row and of clean_features."""
    sys.path.insert(0, str(starter))
    from modules.features import clean_features
    from modules.model_io import load_model

    pipeline, metadata = load_model(starter / "models" / "model.pkl")
    rows = [clean_features(b, metadata) for b in bodies]
    predict, clean = [], []
    for body, row in zip(bodies, rows, strict=True):
        started = time.perf_counter()
        pipeline.predict(row)
        predict.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        clean_features(body, metadata)
        clean.append((time.perf_counter() - started) * 1000)
    return {"predict": predict, "clean": clean}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_api(starter: Path, database: Path, **settings: str) -> tuple[subprocess.Popen, str]:
    """`python main.py` on a free port, logging to `database`; wait until it answers."""
    port = free_port()
    env = dict(os.environ, PORT=str(port), DATABASE_URL=f"sqlite:///{database}", LOG_LEVEL="INFO")
    env.update(settings)
    process = subprocess.Popen(
        [sys.executable, "main.py"],
        cwd=starter,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the starter's API did not start within 30 s")


def sequential(url: str, bodies: list[dict]) -> list[float]:
    """Client-side latency (ms) of one request at a time on a keep-alive connection."""
    session, times = requests.Session(), []
    for i, features in enumerate(bodies):
        data = json.dumps({"id": f"seq-{i}", "features": features})
        started = time.perf_counter()
        response = session.post(
            f"{url}/predict", data=data, headers={"Content-Type": "application/json"}
        )
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200 and response.json()["pred"] in (0, 1)
    return times


def throughput(url: str, bodies: list[dict], clients: int, seconds: float) -> dict:
    """Requests per second with `clients` threads sending back to back for `seconds`."""
    stop = time.monotonic() + seconds
    counts, errors, lock = [0] * clients, [0], threading.Lock()

    def client(index: int) -> None:
        session = requests.Session()
        i = 0
        while time.monotonic() < stop:
            data = json.dumps({"id": f"tp-{index}-{i}", "features": bodies[i % len(bodies)]})
            response = session.post(
                f"{url}/predict", data=data, headers={"Content-Type": "application/json"}
            )
            if response.status_code != 200:
                with lock:
                    errors[0] += 1
            counts[index] += 1
            i += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {"requests": sum(counts), "errors": errors[0], "rps": sum(counts) / elapsed}


def logged_rows(database: Path) -> tuple[int, list[float]]:
    """Rows the API logged, and the server-side latencies (ms) it recorded."""
    with sqlite3.connect(database) as conn:
        latencies = [row[0] for row in conn.execute("select latency_ms from predictions")]
    return len(latencies), latencies


SECTION = """\
## Participant starter

Measured by `bench/starter_bench.py` on {day}: {cores} cores, Python {python}. The model
is the one the starter's notebook trains (logistic regression in a scikit-learn
`Pipeline` with a `ColumnTransformer`, {features} features), served by `python main.py`
(waitress) on 127.0.0.1 with **database logging on** (every request queued
to the background writer, saved to SQLite in batches). The client runs on the same
machine and shares its cores.

| measure | p50 | p99 |
|---|---|---|
| bare `pipeline.predict` on one ready row (in process) | {predict50:.2f} ms | {predict99:.2f} ms |
| `clean_features` on one request (in process) | {clean50:.3f} ms | {clean99:.3f} ms |
| `POST /predict`, one at a time, keep-alive (client side) | {api50:.2f} ms | {api99:.2f} ms |
| time in the view (logged `latency_ms`: cleaning + model) | {view50:.2f} ms | {view99:.2f} ms |
| **API overhead** (`POST /predict` − bare `predict`) | **{over50:.2f} ms** | {over99:.2f} ms |
| API overhead, batching on (`BATCH_WINDOW_MS=5`) | {batched50:.2f} ms | {batched99:.2f} ms |

The table's API rows are measured with batching off (`BATCH_WINDOW_MS=0`), the path of one
request alone: what issue 6's aim is about. With batching on (the default), a request that
arrives alone waits one batching window for company before the model runs: the last row
above, about the window more. That is the trade micro-batching makes on
purpose (Triton calls it the queue delay): a few milliseconds on a lone request buy a
burst of 20 one model call instead of 20 (docs/PERFORMANCE.md, Capacity).

Throughput with {clients} client threads for {seconds:.0f} s: **{rps:,.0f} requests per second**
({tp_requests:,} requests, {tp_errors} errors). Rows logged to the database:
{rows:,} of {sent:,} requests sent (the rest: {dropped}).

Aim of issue 6: under 5 ms p50 overhead with the database logging on.
{verdict}

Where the time goes: the model itself is most of it. A scikit-learn `Pipeline` on a
one-row DataFrame pays a fixed cost per step (the `ColumnTransformer` splits the frame,
the imputers and the encoder check their input), so one row costs about as much as a
hundred. The API adds parsing the JSON, the cleaning (checking each field is a few µs;
most of its time is building the one-row pandas frame), Flask's request handling and
waitress's HTTP work; the database costs the request only a `queue.put`.

What limits throughput: one Python process holds the GIL, so the threads interleave
rather than run in parallel (they exist so that a slow request does not hold up the
others), and the cores are shared with the benchmark's own client threads. About 5 ms of
CPU per request gives roughly 200 requests per second: six times the workshop game's
peak rate (30 requests per second, in bursts of 20: the last of a burst is answered
after about 100 ms). The view's p99 above includes the throughput run, where 8 requests
share the GIL. A team that needs more runs several processes behind one port or makes
the model cheaper per row.
"""


def measure_batched(starter: Path, database: Path, bodies: list[dict]) -> list[float]:
    """One request at a time with the starter's default settings (batching on)."""
    process, url = start_api(starter, database)
    try:
        sequential(url, bodies[:100])
        return sequential(url, bodies)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def measure(args: argparse.Namespace) -> dict:
    """Train the starter's model; time it bare, then behind its API (batched or not, alone
    and under concurrent clients); count the rows its API logged."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print("training the model with the starter's notebook ...")
        starter = prepare(workdir)
        bodies = sample_requests(starter, args.requests)
        bare = bare_model(starter, bodies)
        database = workdir / "predictions.sqlite"
        batched = measure_batched(starter, workdir / "batched.sqlite", bodies)
        process, url = start_api(starter, database, BATCH_WINDOW_MS="0")
        try:
            sequential(url, bodies[:100])  # warm-up: connections, caches
            api = sequential(url, bodies)
            flow = throughput(url, bodies, args.clients, args.seconds)
        finally:
            process.send_signal(signal.SIGTERM)  # the API saves its queue before it exits
            process.wait(30)
        rows, view = logged_rows(database)
        features = len(json.loads((starter / "models" / "model.json").read_text())["features"])
    return {
        "bare": bare,
        "batched": batched,
        "api": api,
        "flow": flow,
        "rows": rows,
        "view": view,
        "features": features,
    }


def section(args: argparse.Namespace, numbers: dict) -> str:
    """The "Participant starter" section of docs/PERFORMANCE.md from one run's numbers."""
    bare, batched, api, flow = (numbers[k] for k in ("bare", "batched", "api", "flow"))
    rows, view = numbers["rows"], numbers["view"]
    sent = 100 + len(api) + flow["requests"]
    predict50, api50 = percentile(bare["predict"], 0.5), percentile(api, 0.5)
    over50 = api50 - predict50
    return SECTION.format(
        day=date.today().isoformat(),
        cores=os.cpu_count(),
        python=platform.python_version(),
        features=numbers["features"],
        predict50=predict50,
        predict99=percentile(bare["predict"], 0.99),
        clean50=percentile(bare["clean"], 0.5),
        clean99=percentile(bare["clean"], 0.99),
        api50=api50,
        api99=percentile(api, 0.99),
        view50=percentile(view, 0.5),
        view99=percentile(view, 0.99),
        over50=over50,
        over99=percentile(api, 0.99) - percentile(bare["predict"], 0.99),
        batched50=percentile(batched, 0.5) - predict50,
        batched99=percentile(batched, 0.99) - percentile(bare["predict"], 0.99),
        clients=args.clients,
        seconds=args.seconds,
        rps=flow["rps"],
        tp_requests=flow["requests"],
        tp_errors=flow["errors"],
        rows=rows,
        sent=sent,
        dropped="none" if rows == sent else f"{sent - rows} dropped",
        verdict=(
            f"Met: {over50:.2f} ms."
            if over50 < 5
            else f"Not met: {over50:.2f} ms (see below for where the time goes)."
        ),
    )


def main() -> None:
    """Train, serve, measure, print the section and write it to docs/PERFORMANCE.md."""
    stopping.on_sigterm_clean_up()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput run length")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--no-write", action="store_true", help="do not touch the docs")
    args = parser.parse_args()
    numbers = measure(args)
    text = section(args, numbers)
    print(text)
    print(f"mean POST /predict {statistics.mean(numbers['api']):.2f} ms")
    if not args.no_write:
        performance_doc.write_section("Participant starter", text)
        print("written to docs/PERFORMANCE.md")


if __name__ == "__main__":
    main()
