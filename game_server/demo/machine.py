"""The demo's dealings with this machine: free ports, its run folder, a browser, log tails."""

import os
import socket
import sys
import time
import webbrowser
from pathlib import Path

HOST = "127.0.0.1"


class DemoError(RuntimeError):
    """The demo cannot go on (one line saying why)."""


def port_is_free(port: int) -> bool:
    """Whether a server could listen on HOST:port now (with SO_REUSEADDR, as servers do)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """`count` different free loopback ports (held together, so none is picked twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def new_folder(root: Path) -> Path:
    """A new folder `root/demo-<date>-<time>` (a suffix when two runs start the same second)."""
    stamp = time.strftime("demo-%Y%m%d-%H%M%S")
    for n in range(1, 100):
        folder = root / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir(parents=True)
            return folder.resolve()
        except FileExistsError:
            continue
    raise DemoError(f"cannot create a new demo folder in {root}")


def open_browser(url: str) -> bool:
    """Open `url` in a graphical browser when there is one; never fails."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return False  # no screen: webbrowser would start a text browser in this terminal
    try:
        return bool(webbrowser.open(url, new=2))
    except Exception:  # any browser trouble is not the demo's trouble
        return False


def tail(path: Path, lines: int = 3) -> str:
    """The last lines of a log file, folded into one line."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no output)"
    return " | ".join(text[-lines:]) or "(no output)"
