"""The reference load generators bench/customer_bench.py holds the customer against.

Locust (FastHttpUser, headless) and `wrk`, on the same stub ports, with the same body
(`FEATURES`, which the customer sends too) and time limit; each is skipped (None) when it
is not installed.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FEATURES = {
    "age": 34,
    "income": 4100.0,
    "loan_amount": 12000.0,
    "loan_term_months": 36,
    "employment_years": 6.5,
    "region": "north",
    "home_ownership": "rent",
    "purpose": "car",
    "credit_lines": 4,
    "late_payments_12m": 0,
    "debt_to_income": 0.31,
}


WRK_LUA = """
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Request-ID"] = "wrk"
"""


def run_wrk(url: str, seconds: int, connections: int) -> float | None:
    """Requests per second `wrk` (one thread, like the customer's one loop) gets from a stub."""
    if shutil.which("wrk") is None:
        return None
    body = json.dumps({"id": "wrk", "features": FEATURES})
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_LUA.format(body=body))
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    match = re.search(r"Requests/sec:\s*([\d.]+)", out)
    return float(match.group(1)) if match else None


LOCUSTFILE = """
import itertools

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

BODY = {body!r}
PORTS = itertools.cycle({ports!r})


class Customer(FastHttpUser):
    wait_time = constant(0)
    network_timeout = connection_timeout = {timeout!r}  # the customer's time limit

    def __init__(self, environment):
        self.host = f"http://127.0.0.1:{{next(PORTS)}}"  # one stub port per user
        super().__init__(environment)

    @task
    def predict(self):
        self.client.post("/predict", data=BODY,
                         headers={{"Content-Type": "application/json", "X-Request-ID": "l"}})
"""


def run_locust(ports: list[int], seconds: int, timeout: float) -> dict | None:
    """Locust (FastHttpUser, headless, one process): one user per stub port, as the customer.

    The same body and time limit as the customer's; returns its requests per second and
    failures, or None when Locust is not installed.
    """
    locust = Path(sys.executable).with_name("locust")
    if not locust.exists():
        return None
    body = json.dumps({"id": "locust", "features": FEATURES})
    users = len(ports)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "locustfile.py")
        path.write_text(LOCUSTFILE.format(body=body, ports=ports, timeout=timeout))
        command = [str(locust), "-f", str(path), "--headless", "-u", str(users)]
        command += ["-r", str(users * 10), "-t", f"{seconds}s", "--only-summary"]
        command += ["--csv", f"{tmp}/out", "--loglevel", "ERROR"]
        subprocess.run(command, capture_output=True, timeout=seconds + 60, check=False)
        stats = Path(tmp, "out_stats.csv")
        if not stats.exists():
            return None
        for row in csv.DictReader(stats.open()):
            if row["Name"] == "Aggregated":
                return {"rps": float(row["Requests/s"]), "failed": int(row["Failure Count"])}
    return None
