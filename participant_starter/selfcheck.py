"""Check your running API the way the game's customer will, before the customer does.

    python selfcheck.py                      # your API on PORT from .env
    python selfcheck.py --url http://127.0.0.1:$DEBUG_PORT/predict   # another one

At the exercise level it first names the next open exercise (the lowest-numbered
`raise NotImplementedError("Exercise N: ...")` left in the code). Then it sends clean
requests, requests with every kind of messy input the customer sends (missing fields,
nulls, numbers as strings, unknown categories, out-of-range values, extra fields, changed
capitalisation), then a short burst of concurrent requests. For each answer it applies
the game's rules and says in plain words what would score -1 and why, then prints
latency percentiles. The exit code is 1 when anything would score -1.
"""

import argparse
import json
import re
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import requests
from modules import access, config
from modules.features import REQUEST_COLUMNS

TIMEOUT = 1.0  # seconds: the game's default, total per request
MAX_BODY = 64 * 1024  # bytes: the game's default limit for an answer
# The line that stands for an exercise's code until you write it (the exercise level).
OPEN_EXERCISE = re.compile(r'raise NotImplementedError\(\s*"Exercise (\d+): ([^"]*)"')


def open_exercises(root: Path = config.ROOT) -> list[tuple[int, str, str]]:
    """The exercises still open in the code: (number, file:line, hint), the next one first."""
    found = []
    for path in [*root.glob("*.py"), *root.glob("modules/*.py"), *root.glob("tests/*.py")]:
        text = path.read_text(encoding="utf-8")
        for match in OPEN_EXERCISE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((int(match[1]), f"{path.relative_to(root)}:{line}", match[2]))
    return sorted(found)


def judge(response: requests.Response | None, elapsed: float, error: str | None) -> str | None:
    """Why the game would score this answer -1, in plain words; None when it is valid."""
    if error or response is None:
        return error or "no answer"
    if elapsed > TIMEOUT:
        return f"too slow: {elapsed * 1000:.0f} ms (the game waits {TIMEOUT * 1000:.0f} ms)"
    if response.status_code != 200:
        return f"status {response.status_code} instead of 200: {response.text[:200]!r}"
    if len(response.content) > MAX_BODY:
        return f"answer too large: {len(response.content)} bytes (limit {MAX_BODY})"
    try:
        body = response.json()
    except ValueError:
        return f"answer is not JSON: {response.text[:200]!r}"
    if not isinstance(body, dict) or "pred" not in body:
        return f'answer has no "pred" key: {response.text[:200]!r}'
    pred = body["pred"]
    if type(pred) not in (int, bool) or pred not in (0, 1):
        return f'"pred" must be the integer 0 or 1 (or true/false), got {pred!r}'
    return None


# What the game's customer shows your API (modules/access.py), when TEAM_TOKEN is set.
_token = config.load_settings()["TEAM_TOKEN"]
GAME_KEY = {"X-Game-Key": access.game_key(_token)} if _token else {}


def send(session: requests.Session, url: str, features: object) -> tuple[str | None, float, dict]:
    """POST one request as the customer does; return (problem or None, seconds, answer)."""
    request_id = uuid.uuid4().hex
    body = json.dumps({"id": request_id, "features": features})
    headers = {"Content-Type": "application/json", "X-Request-ID": request_id, **GAME_KEY}
    started = time.perf_counter()
    response, error = None, None
    try:
        response = session.post(
            url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False
        )
    except requests.Timeout:
        error = f"no answer within {TIMEOUT * 1000:.0f} ms (timeout)"
    except requests.ConnectionError as exc:
        error = f"cannot connect: is the API running on this port? ({type(exc).__name__})"
    except requests.RequestException as exc:  # e.g. a broken HTTP answer
        error = f"broken HTTP answer: {type(exc).__name__}: {exc}"
    elapsed = time.perf_counter() - started
    problem = judge(response, elapsed, error)
    answer = response.json() if response is not None and problem is None else {}
    return problem, elapsed, answer


def model_features(base_url: str) -> list[str]:
    """The features the running model uses, as its /health reports them."""
    features = requests.get(f"{base_url}/health", timeout=5).json()["features"]
    if not isinstance(features, list):
        raise TypeError("features is not a list")
    return features


def sample_requests(count: int) -> list[dict]:
    """Clean applicants as the customer sends them: rows of the training data, with the
    columns of the request contract only (modules/features.py, data/README.md)."""
    data = pd.read_csv(config.TRAIN_CSV)
    data = data[[name for name in REQUEST_COLUMNS if name in data.columns]]
    data = data.sample(count, random_state=0, replace=len(data) < count)
    # JSON has no NaN: a missing value goes as null, as the customer sends it.
    return [
        {name: None if pd.isna(value) else value for name, value in row.items()}
        for row in data.to_dict("records")
    ]


def never_sent(features: list[str]) -> list[str]:
    """The model's features that no request carries: in the game they are always missing."""
    return [name for name in features if name not in REQUEST_COLUMNS]


def messy_cases(clean: dict) -> list[tuple[str, object]]:
    """(name, features) for every kind of messy input the customer sends."""
    numbers = [k for k, v in clean.items() if isinstance(v, (int, float))]
    words = [k for k, v in clean.items() if isinstance(v, str)]
    cases: list[tuple[str, object]] = [
        ("extra fields", {**clean, "comment": "urgent, customer called twice", "_debug": True}),
        ("no features at all", {}),
        ("features is not an object", [1, 2, 3]),
        ("every field is null", dict.fromkeys(clean)),
    ]
    if numbers:
        number = numbers[0]
        cases += [
            ("a field is missing", {k: v for k, v in clean.items() if k != number}),
            ("a number is null", {**clean, number: None}),
            ("numbers sent as strings", {**clean, **{k: str(clean[k]) for k in numbers}}),
            ("a negative number", {**clean, number: -5}),
            ("zeros where zero is impossible", {**clean, **dict.fromkeys(numbers, 0)}),
            ("an absurdly large number", {**clean, number: 10**9}),
        ]
    if words:
        word = words[0]
        cases += [
            ("a category is null", {**clean, word: None}),
            ("an unknown category", {**clean, word: "never_seen_before"}),
            ("categories in capitals", {**clean, **{k: clean[k].upper() for k in words}}),
            ("categories in Title Case", {**clean, **{k: clean[k].title() for k in words}}),
        ]
    return cases


def print_next_exercise() -> None:
    """At the exercise level: which exercise to do next, and where."""
    exercises = open_exercises()
    if exercises:
        number, where, hint = exercises[0]
        print(f"Next exercise: {number} in {where}: {hint}")
        print(f"({len(exercises)} open; `pytest -x` shows the first failing test)\n")


def print_failures(problems: list[tuple[str, str | None]]) -> int:
    """One line per kind of failure, with how many requests had it; how many failed."""
    by_problem: dict[str, list[str]] = {}
    for name, problem in problems:
        if problem:
            by_problem.setdefault(problem, []).append(name)
    for problem, names in by_problem.items():
        which = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        count = f"{len(names)} requests ({which})" if len(names) > 1 else names[0]
        print(f"  FAIL  {count}: would score -1: {problem}")
    return sum(len(names) for names in by_problem.values())


def check_cases(url: str, cases: list[tuple[str, object]]) -> tuple[int, list[float]]:
    """Send each case in turn, print how it went; (requests that would score -1, latencies)."""
    session = requests.Session()
    problems, latencies = [], []
    for name, features in cases:
        problem, elapsed, answer = send(session, url, features)
        latencies.append(elapsed)
        problems.append((name, problem))
        if not problem:
            print(f"  ok    {name}: pred={answer['pred']} in {elapsed * 1000:.1f} ms")
    return print_failures(problems), latencies


def check_burst(url: str, burst: list[dict], concurrency: int) -> tuple[int, list[float]]:
    """Send the burst `concurrency` at a time; (requests that would score -1, latencies)."""
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda f: send(requests.Session(), url, f), burst))
    failed = print_failures([(f"burst {i + 1}", p) for i, (p, _, _) in enumerate(results)])
    if not failed:
        print(f"  ok    all {len(burst)} answered in time")
    return failed, [elapsed for _, elapsed, _ in results]


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the values fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    """Run every check against the API and print what would score -1."""
    port = config.load_settings()["PORT"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=f"http://127.0.0.1:{port}/predict")
    parser.add_argument("--burst", type=int, default=50, help="requests in the burst")
    parser.add_argument("--concurrency", type=int, default=10, help="requests at a time")
    args = parser.parse_args(argv)
    base_url = args.url.rsplit("/", 1)[0]
    print_next_exercise()

    try:
        features = model_features(base_url)
        clean_rows = sample_requests(5 + args.burst)
    except requests.ConnectionError:
        print(f"selfcheck: nothing answers on {base_url}: start your API first (python main.py)")
        return 1
    except requests.Timeout:
        print(f"selfcheck: {base_url}/health did not answer within 5 s: is your API stuck?")
        return 1
    except (requests.RequestException, ValueError, KeyError, TypeError):
        print(
            f"selfcheck: {base_url}/health is not your API's (no features list): is the URL right?"
        )
        return 1
    except OSError as exc:  # the training data is missing or unreadable
        print(f"selfcheck: cannot read the training data: {exc}")
        return 1

    print(f"Checking {args.url} with the game's rules (200, JSON object, pred 0/1, < 1 s)\n")
    unknown = never_sent(features)
    if unknown:
        print(
            f"  FAIL  your model uses {', '.join(unknown)}: no request carries it, so in the "
            "game it is always missing (data/README.md says which columns requests carry)"
        )
    cases = [(f"clean request {i + 1}", row) for i, row in enumerate(clean_rows[:5])]
    failures, latencies = check_cases(args.url, cases + messy_cases(clean_rows[0]))
    burst = clean_rows[5:]
    print(f"\nA burst of {len(burst)} requests, {args.concurrency} at a time")
    burst_failures, burst_latencies = check_burst(args.url, burst, args.concurrency)
    failures += burst_failures
    latencies += burst_latencies

    ms = [value * 1000 for value in latencies]
    print(
        f"\nLatency over {len(ms)} requests: p50 {percentile(ms, 0.5):.1f} ms, "
        f"p95 {percentile(ms, 0.95):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
        f"mean {statistics.mean(ms):.1f} ms"
    )
    if failures:
        print(f"{failures} of {len(ms)} requests would score -1: fix them before the game does.")
    if unknown:
        print(f"Your model needs {len(unknown)} column(s) no request carries: retrain without.")
    if failures or unknown:
        return 1
    print(f"All {len(ms)} requests would get a valid answer.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
