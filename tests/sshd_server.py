"""A real OpenSSH server on 127.0.0.1 for tests: a free port and a throwaway host key."""

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from starter_helpers import free_port


def wait_for_port(port: int, seconds: float = 10.0) -> bool:
    """Whether something listens on 127.0.0.1:port within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def keygen(path: Path) -> Path:
    """A new ed25519 key pair at `path` (and `path`.pub); the private key's path."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@dataclass(frozen=True)
class Sshd:
    """A running test sshd: its port and a known_hosts file that pins its host key."""

    port: int
    known_hosts: str


@contextlib.contextmanager
def sshd(folder: Path, extra_config: str = "") -> Iterator[Sshd]:
    """Run sshd (as root) with its files in `folder` until the block ends."""
    host = keygen(folder / "host")
    port = free_port()
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {folder / 'sshd.pid'}\n"
        "PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM yes\n"
        "PermitRootLogin prohibit-password\nStrictModes no\n"
        "AuthorizedKeysFile .ssh/authorized_keys\nSubsystem sftp internal-sftp\n" + extra_config
    )
    os.makedirs("/run/sshd", exist_ok=True)
    with open(folder / "sshd.log", "w") as log:
        proc = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(folder / "sshd_config")], stderr=log
        )
    try:
        wait_for_port(port)
        kind, key = (folder / "host.pub").read_text().split()[:2]
        (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {kind} {key}\n")
        yield Sshd(port, str(folder / "known_hosts"))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
