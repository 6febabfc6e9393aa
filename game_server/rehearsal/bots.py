"""A rehearsal team's bot: the participant's day in its own login shell over SSH.

Each bot logs in as its team with the team's SSH key (the server's host key pinned), puts
the exercise solutions in place when the starter is at the exercise level (as the team
would type them), and runs a day script (readme.py) with `bash -l`, as a participant types
the README's commands in a login shell. A script that fails is a failure of the day: its
last lines are kept for the verdict.
"""

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from game_server.accounts import levels

log = logging.getLogger(__name__)

STARTER = "participant_starter"
# sshd drops some of more than 10 logins that arrive at once (its MaxStartups, 10:30:100):
# a whole room's bots log in together. A dropped login is tried again, as a participant
# would, after a pause that grows (with jitter, so the retries do not arrive together).
LOGIN_ATTEMPTS = 6


@dataclass
class Bot:
    """One team's bot: where it logs in and what happened."""

    user: str
    key: Path
    port: int
    known_hosts: Path
    host: str = "127.0.0.1"
    errors: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def client(self) -> paramiko.SSHClient:
        """A logged-in SSH client (the host key must be the pinned one); a login the
        server dropped is tried again (LOGIN_ATTEMPTS in all)."""
        for attempt in range(1, LOGIN_ATTEMPTS):
            try:
                return self._login()
            except (paramiko.AuthenticationException, paramiko.BadHostKeyException):
                raise  # a wrong key is not a busy server
            except (OSError, paramiko.SSHException) as exc:
                pause = min(8.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)
                log.info(
                    "rehearsal bot login dropped user=%s attempt=%d error=%r: again in %.1f s",
                    self.user,
                    attempt,
                    exc,
                    pause,
                )
                time.sleep(pause)
        return self._login()  # the last attempt's error is the caller's

    def _login(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                self.host,
                self.port,
                self.user,
                key_filename=str(self.key),
                allow_agent=False,
                look_for_keys=False,
                timeout=20,
            )
        except BaseException:
            client.close()
            raise
        return client

    def run(self, name: str, script: str, seconds: float) -> bool:
        """Run `script` in a login shell; False (and the error kept) when it fails."""
        started = time.monotonic()
        try:
            with self.client() as client:
                with client.open_sftp() as sftp, sftp.file(f"rehearsal-{name}.sh", "w") as f:
                    f.write(script)
                status, output = _run(client, f"bash -l rehearsal-{name}.sh", seconds)
        except (OSError, paramiko.SSHException) as exc:
            status, output = -1, f"cannot log in: {exc}"
        self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - started
        if status != 0:
            tail = " | ".join(output.strip().splitlines()[-3:])[-300:]
            self.errors.append(f"{name}: exit {status}: {tail}")
            log.warning("rehearsal bot failed user=%s step=%s status=%s", self.user, name, status)
            return False
        log.info("rehearsal bot step done user=%s step=%s", self.user, name)
        return True

    def fill_exercises(self) -> None:
        """Write the solutions into the team's starter (the exercise level's gaps, filled)."""
        solutions = {
            rel: both.complete
            for rel, both in levels.split_tree(levels.SOURCE).items()
            if both.complete != both.exercises
        }
        with self.client() as client, client.open_sftp() as sftp:
            for rel, text in solutions.items():
                with sftp.file(f"{STARTER}/{rel}", "w") as f:
                    f.write(text)


def _run(client: paramiko.SSHClient, command: str, seconds: float) -> tuple[int, str]:
    """Run `command`; (exit status, output), -1 when it outlasts `seconds`."""
    transport = client.get_transport()
    assert transport is not None
    channel = transport.open_session()
    channel.set_combine_stderr(True)
    channel.exec_command(command)
    output, deadline = b"", time.monotonic() + seconds
    while not channel.exit_status_ready() or channel.recv_ready():
        if channel.recv_ready():
            output = (output + channel.recv(65536))[-65536:]
        elif time.monotonic() > deadline:
            return -1, output.decode(errors="replace") + f"\n(timed out after {seconds:.0f} s)"
        else:
            time.sleep(0.2)
    return channel.recv_exit_status(), output.decode(errors="replace")
