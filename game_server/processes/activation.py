"""The listening socket systemd hands over (socket activation), as `sd_listen_fds` reads it.

With `game-server.socket` (scripts/setup_server.sh), systemd holds 127.0.0.1:8000 from boot
on, whatever the game does: while the game restarts (a crash, `Restart=on-failure`, the
instructor's restart), connections wait in the socket's queue and no other user can listen
on the port (to catch the instructor's login or the teams' feedback polls with their
tokens). systemd starts the service with the socket as fd 3 and says so in the environment:
`LISTEN_PID` (this process) and `LISTEN_FDS` (how many). The variables are removed once read,
so a child process does not take them for its own; the socket is the web's from then on.
No dependency: this is the protocol of sd_listen_fds(3), which is three variables and fd 3.
"""

import logging
import os
import socket

log = logging.getLogger(__name__)

LISTEN_FDS_START = 3  # SD_LISTEN_FDS_START


class ActivationError(OSError):
    """The environment says there is a socket, but it is not one we can serve on."""


def inherited_socket() -> socket.socket | None:
    """The listening TCP socket systemd passed to this process, or None without one."""
    pid, count = os.environ.get("LISTEN_PID"), os.environ.get("LISTEN_FDS")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # sd_listen_fds(unset_environment=1)
    if pid is None or count is None or pid != str(os.getpid()):
        return None  # not for us (a parent's variables)
    if count != "1":
        raise ActivationError(f"LISTEN_FDS={count}: expected one listening socket")
    try:
        sock = socket.socket(fileno=LISTEN_FDS_START)
    except OSError as exc:
        raise ActivationError(f"fd {LISTEN_FDS_START} from systemd: {exc.strerror}") from None
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_ACCEPTCONN
    ):
        sock.detach()
        raise ActivationError(f"fd {LISTEN_FDS_START} from systemd is not a listening TCP socket")
    sock.set_inheritable(False)  # handed on explicitly (pass_fds), like any other socket
    log.info("listening socket from systemd fd=%d address=%s", sock.fileno(), sock.getsockname())
    return sock
