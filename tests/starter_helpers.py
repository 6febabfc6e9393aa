"""Helpers for testing the participant starter as a team gets it: a copy, a kernel, a server."""

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
STARTER = REPO / "participant_starter"
TRAIN_CSV = REPO / "data" / "train_data.csv"
NOTEBOOK = "1.0-train-model.ipynb"


def copy_starter(target: Path, level: str = "complete") -> Path:
    """A fresh copy of the starter at `level`, as `users create` puts it in a team's home
    (the training data and the data dictionary in its data/ folder)."""
    from game_server.accounts.config import Settings
    from game_server.accounts.starter import starter_tarball

    with tarfile.open(fileobj=io.BytesIO(starter_tarball(Settings(starter_level=level)))) as tar:
        for member in tar.getmembers():
            path = target / member.name.split("/", 1)[1] if "/" in member.name else target
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.write_bytes(tar.extractfile(member).read())
    return target


def run_notebook(starter: Path, timeout: int = 240) -> None:
    """Execute the training notebook top to bottom in a real `python3` kernel."""
    import nbformat
    from nbclient import NotebookClient

    path = starter / "notebooks" / NOTEBOOK
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    nbformat.write(notebook, path.with_suffix(".executed.ipynb"))


def free_port() -> int:
    """A TCP port nobody listens on right now, on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def starter_env(starter: Path, **settings: str) -> dict:
    """The environment a team's shell would have, with `settings` as in its `.env`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MODEL_PATH")}
    env.update(settings)
    return env


@contextlib.contextmanager
def serve(starter: Path, **settings: str):
    """Run `python main.py` (waitress) in `starter`; yield its base URL; stop it with SIGTERM."""
    port = free_port()
    env = starter_env(starter, PORT=str(port), **settings)
    log = open(starter / "output" / "server.out", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "main.py"], cwd=starter, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"main.py exited: {(starter / 'output/server.out').read_text()}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("main.py did not answer /health within 30 s")
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
