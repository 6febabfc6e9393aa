"""Where provisioning commands run: on this machine, or on the server over SSH (paramiko).

Both executors satisfy `Executor`: `run(argv, stdin=None, timeout=..., check=True, root=True)`
returns `(rc, stdout, stderr)` as text. `argv` is always a list (never a shell string); over SSH it
is quoted with `shlex.join`. Privileged steps (`root=True`, the default) go through
`sudo -n` when the user is not root, so a missing sudo rule fails at once instead of
waiting for a password. Every exit status is checked (`check=True`): a failure raises
ExecError with the command and the first line of its stderr. Secrets (passwords) are only
ever passed on stdin and are never logged. Every command's output is bounded: stdout and
stderr beyond `MAX_OUTPUT` bytes each stop the command (it is killed) with an ExecError, so
nothing a command prints can exhaust the memory of the instructor's side. Over SSH the
server's host key must be in the given known_hosts file (paramiko's RejectPolicy); an
unknown host is accepted (and added to that file) only with `accept_new_host_key=True`, and
a changed key is always refused.
"""

import logging
import os
import shlex
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol, Self

from game_server.accounts.bounded import TooMuchOutput, run_bounded
from game_server.common.logs import first_line

if TYPE_CHECKING:  # imported where SSH is used: the game's install has no paramiko (extras.py)
    import paramiko

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 120.0
MAX_OUTPUT = 16 * 1024 * 1024  # bytes of stdout (and of stderr) a command may print


class ExecError(RuntimeError):
    """A command that failed or could not run; the message is one line."""


class Ran(NamedTuple):
    """What a command gave: its exit status, stdout and stderr (decoded, bounded)."""

    rc: int
    out: str
    err: str


class Executor(Protocol):
    """Where provisioning commands run: every step of `accounts` goes through `run`."""

    def run(
        self,
        argv: Sequence[str],
        stdin: str | bytes | None = None,
        timeout: float | None = None,
        check: bool = True,
        root: bool = True,
    ) -> Ran:
        """Run `argv` (as root unless `root=False`), feed `stdin`; (rc, stdout, stderr)."""
        ...

    def close(self) -> None:
        """Release the connection, if any."""
        ...

    def __enter__(self) -> Self:
        """The executor itself, closed at the end of the `with` block."""
        ...

    def __exit__(self, *exc: object) -> None:
        """Close."""
        ...


def _summary(argv: list[str]) -> str:
    """The command for messages, on one line: its first words, never its stdin.

    A command run as a team (files.as_team: `env -i VARS setpriv ... -- ARGV`) is shown as
    `(as USER) ARGV`, not as its fixed environment.
    """
    prefix = ""
    if argv[:2] == ["env", "-i"] and "--" in argv:
        user = next((a[5:] for a in argv if a.startswith("USER=")), "?")
        prefix, argv = f"(as {user}) ", argv[argv.index("--") + 1 :]
    text = prefix + " ".join(shlex.join(argv).split())  # a script's newlines: one line
    return text if len(text) <= 120 else text[:117] + "..."


def _bytes(stdin: str | bytes | None) -> bytes:
    """Text or bytes for a command's stdin, as bytes (a tarball is bytes, SQL is text)."""
    return stdin.encode() if isinstance(stdin, str) else (stdin or b"")


def _checked(argv: list[str], rc: int, out: str, err: str, check: bool) -> Ran:
    """Raise ExecError for a failed command when `check`, else return the result."""
    log.debug("ran cmd=%s rc=%s", _summary(argv), rc)
    if check and rc != 0:
        raise ExecError(
            f"{_summary(argv)} failed (exit {rc}): {first_line(err) or '(no output on stderr)'}"
        )
    return Ran(rc, out, err)


class LocalExecutor:
    """Run commands on this machine (the instructor is on the server)."""

    host = "127.0.0.1"

    def __init__(
        self, sudo: bool | None = None, timeout: float = DEFAULT_TIMEOUT, limit: int = MAX_OUTPUT
    ) -> None:
        """Use `sudo -n` for privileged steps when not root (or as `sudo` says)."""
        self.sudo = os.geteuid() != 0 if sudo is None else sudo
        self.timeout = timeout
        self.limit = limit

    def run(
        self,
        argv: Sequence[str],
        stdin: str | bytes | None = None,
        timeout: float | None = None,
        check: bool = True,
        root: bool = True,
    ) -> Ran:
        """Run `argv`, feed `stdin` (text or bytes), return (rc, stdout, stderr)."""
        argv, timeout = list(argv), timeout or self.timeout
        full = ["sudo", "-n", "--", *argv] if root and self.sudo else argv
        try:
            rc, out, err = run_bounded(full, _bytes(stdin), timeout, self.limit)
        except TimeoutError:  # (an OSError too: first)
            raise ExecError(f"{_summary(argv)} timed out after {timeout:g} s") from None
        except TooMuchOutput:
            raise ExecError(
                f"{_summary(argv)} printed more than {self.limit} bytes: stopped"
            ) from None
        except OSError as exc:
            raise ExecError(f"{_summary(argv)} could not start: {exc}") from None
        text_out, text_err = out.decode(errors="replace"), err.decode(errors="replace")
        return _checked(argv, rc, text_out, text_err, check)

    def close(self) -> None:
        """Nothing to close."""

    def __enter__(self) -> Self:
        """The executor itself, closed at the end of the `with` block."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close."""
        self.close()


class SshTarget(NamedTuple):
    """Whom to log in as, where."""

    user: str
    host: str
    port: int


def parse_target(target: str) -> SshTarget:
    """Split `USER@HOST[:PORT]` (or `HOST`) into (user, host, port); port 22 by default."""
    user, _, hostport = target.rpartition("@")
    host, port = hostport, 22
    if hostport.startswith("["):  # [IPv6]:port
        host, _, rest = hostport[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else 22
    elif hostport.count(":") == 1:
        host, _, p = hostport.partition(":")
        if not p.isdigit():
            raise ValueError(f"bad SSH target {target!r}: the port must be a number")
        port = int(p)
    if not host:
        raise ValueError(f"bad SSH target {target!r}: expected USER@HOST[:PORT]")
    return SshTarget(user or "root", host, port)


def ssh_client(
    host: str,
    port: int,
    user: str,
    known_hosts: str,
    *,
    key_path: str | None = None,
    password: str | None = None,
    accept_new_host_key: bool = False,
    timeout: float = 15.0,
) -> "paramiko.SSHClient":
    """A connected SSHClient with the host key checked against `known_hosts`."""
    import paramiko  # the accounts extra

    client = paramiko.SSHClient()
    if accept_new_host_key and not os.path.exists(known_hosts):
        os.makedirs(os.path.dirname(os.path.abspath(known_hosts)), exist_ok=True)
        with open(os.open(known_hosts, os.O_WRONLY | os.O_CREAT, 0o600), "w"):
            pass
    try:
        client.load_host_keys(known_hosts)
    except OSError as exc:
        raise ExecError(f"cannot read known_hosts {known_hosts}: {exc.strerror}") from None
    policy = paramiko.AutoAddPolicy() if accept_new_host_key else paramiko.RejectPolicy()
    client.set_missing_host_key_policy(policy)
    try:
        client.connect(
            host,
            port=port,
            username=user,
            key_filename=key_path,
            password=password,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            allow_agent=password is None and key_path is None,
            look_for_keys=password is None and key_path is None,
        )
    except paramiko.BadHostKeyException:
        client.close()
        raise ExecError(
            f"the host key of {host}:{port} does not match {known_hosts}: refusing to connect"
        ) from None
    except paramiko.SSHException as exc:
        client.close()
        if "not found in known_hosts" in str(exc):
            raise ExecError(
                f"{host}:{port} is not in {known_hosts}: refusing an unknown host key "
                "(check its fingerprint, then use --accept-new-host-key)"
            ) from None
        raise ExecError(f"SSH to {user}@{host}:{port} failed: {exc}") from None
    except (OSError, EOFError) as exc:
        client.close()
        raise ExecError(f"cannot connect to {host}:{port}: {exc}") from None
    return client


class SSHExecutor:
    """Run commands on the workshop server over SSH (the instructor is on a laptop)."""

    def __init__(
        self,
        host: str,
        user: str = "root",
        port: int = 22,
        *,
        key_path: str | None = None,
        known_hosts: str | None = None,
        accept_new_host_key: bool = False,
        connect_timeout: float = 15.0,
        timeout: float = DEFAULT_TIMEOUT,
        limit: int = MAX_OUTPUT,
    ) -> None:
        """Connect now; host key checked against `known_hosts` (default ~/.ssh/known_hosts)."""
        self.host, self.user, self.port = host, user, port
        self.known_hosts = known_hosts or os.path.expanduser("~/.ssh/known_hosts")
        self.sudo = user != "root"
        self.timeout = timeout
        self.limit = limit
        self.client = ssh_client(
            host,
            port,
            user,
            self.known_hosts,
            key_path=key_path,
            accept_new_host_key=accept_new_host_key,
            timeout=connect_timeout,
        )
        log.info("ssh connected host=%s port=%s user=%s", host, port, user)

    def run(
        self,
        argv: Sequence[str],
        stdin: str | bytes | None = None,
        timeout: float | None = None,
        check: bool = True,
        root: bool = True,
    ) -> Ran:
        """Run `argv` on the server, feed `stdin` (text or bytes), return (rc, stdout, stderr)."""
        import paramiko  # the accounts extra (imported by ssh_client when connecting)

        argv, timeout = list(argv), timeout or self.timeout
        full = ["sudo", "-n", "--", *argv] if root and self.sudo else argv
        transport = self.client.get_transport()
        if transport is None:  # the connection is gone (closed)
            raise ExecError(f"{_summary(argv)} failed on {self.host}: not connected")
        chan = None
        try:
            chan = transport.open_session(timeout=timeout)
            chan.settimeout(timeout)
            chan.exec_command(shlex.join(full))
            if stdin:
                chan.sendall(_bytes(stdin))
            chan.shutdown_write()
            out, err = _drain(chan, time.monotonic() + timeout, self.limit)
            rc = chan.recv_exit_status()
        except TimeoutError:
            raise ExecError(
                f"{_summary(argv)} timed out after {timeout:g} s on {self.host}"
            ) from None
        except TooMuchOutput:
            raise ExecError(
                f"{_summary(argv)} printed more than {self.limit} bytes on {self.host}: stopped"
            ) from None
        except (paramiko.SSHException, OSError) as exc:
            raise ExecError(f"{_summary(argv)} failed on {self.host}: {exc}") from None
        finally:
            if chan is not None:
                chan.close()
        return _checked(argv, rc, out, err, check)

    def close(self) -> None:
        """Close the SSH connection."""
        self.client.close()

    def __enter__(self) -> Self:
        """The executor itself, closed at the end of the `with` block."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close."""
        self.close()


def _drain(chan: "paramiko.Channel", deadline: float, limit: int) -> tuple[str, str]:
    """Read stdout and stderr together until the command exits (no window deadlock).

    Each is bounded by `limit` bytes: more stops the read (TooMuchOutput).
    """
    out, err = bytearray(), bytearray()
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError
        got = False
        if chan.recv_ready():
            out += chan.recv(65536)
            got = True
        if chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
            got = True
        if len(out) > limit or len(err) > limit:
            raise TooMuchOutput
        if not got:
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                break
            time.sleep(0.005)
    return out.decode(errors="replace"), err.decode(errors="replace")
