"""Files on the server, through an executor: root's own files, and files in a team's home.

Every file access of provisioning goes through here (the content travels on stdin, paths
as arguments, never in a shell string).

Root never trusts a path a team controls. Root's own files (the registry) are read and
written as root (`read_file`, `write_file`). A team's files are read by root without any
process of the team's uid (`read_team_file`, `path_kinds`: a Python walk that opens each
part of the path relative to its folder without following a link, O_NOFOLLOW, and never
blocks, O_NONBLOCK): only a regular file the team owns, of at most `MAX_TEAM_FILE` bytes;
anything else is refused with one line naming the file (`RefusedFile`). Everything that
changes a team's home runs as the team user (`as_team`: `setpriv`, no PAM session), so the
kernel lets it do only what the team itself may: a write is a temp file renamed over the
target (a symlink a team plants is replaced, never followed).

A process that runs as the team is the team's: it can read its /proc/PID/environ and stop
it. So it starts from an empty environment with only `team_env` (root's variables, such as
an exported GAME_ADMIN_TOKEN or GAME_DATABASE_URL, never reach it), and each such command
gets the team's own time limit (`Settings.team_timeout`): a team that stops it fails alone.
"""

from game_server.accounts.executors import ExecError, Executor

MAX_TEAM_FILE = 64 * 1024  # bytes: a .env or authorized_keys is far smaller
TEAM_TIMEOUT = 30.0  # seconds a command run as a team may take (Settings.team_timeout)
TEAM_PATH = "/usr/local/bin:/usr/bin:/bin"


class RefusedFile(RuntimeError):
    """A file in a team's home that provisioning will not read; one line naming the file."""


def read_file(ex: Executor, path: str) -> str | None:
    """The text of root's own file `path` on the server, or None when it does not exist."""
    script = 'if [ -e "$1" ]; then exec cat -- "$1"; else exit 3; fi'
    rc, out, err = ex.run(["sh", "-c", script, "sh", path], check=False)
    if rc == 3:
        return None
    if rc != 0:
        raise ExecError(f"cannot read {path}: {err.strip() or f'exit {rc}'}")
    return out


def write_file(
    ex: Executor,
    path: str,
    content: str | bytes,
    mode: str = "600",
    team: tuple[str, str] | None = None,
    timeout: float = TEAM_TIMEOUT,
) -> None:
    """Write `path` atomically (temp + rename), created with `mode`; as `team` (user, home).

    The rename replaces whatever is at `path` (a symbolic link is replaced, not followed).
    """
    script = (
        'set -e; umask 077; t=$(mktemp "$1.XXXXXX"); trap \'rm -f "$t"\' EXIT; '
        'cat > "$t"; chmod "$2" "$t"; mv -f -T -- "$t" "$1"; trap - EXIT'
    )  # -T: a folder at `path` is an error, never a place to move the file into
    argv = ["sh", "-c", script, "sh", path, mode]
    if team is None:
        ex.run(argv, stdin=content)
    else:
        ex.run(as_team(*team, argv), stdin=content, timeout=timeout)


def team_env(user: str, home: str) -> list[str]:
    """The whole environment of a command run as a team: nothing of root's."""
    return [f"PATH={TEAM_PATH}", f"HOME={home}", "LANG=C.UTF-8", f"USER={user}", f"LOGNAME={user}"]


def as_team(user: str, home: str, argv: list[str]) -> list[str]:
    """`argv` run as the team user `user` (never as root in the team's home).

    `env -i` empties the environment before the uid changes (and `-C /` leaves root's
    working folder); `setpriv` changes the uid and group in place and execs `argv` (no PAM
    session that could add variables, no fork). Its group is the user's own (`useradd
    --user-group`).
    """
    ids = [f"--reuid={user}", f"--regid={user}", "--init-groups"]
    return ["env", "-i", "-C", "/", *team_env(user, home), "setpriv", *ids, "--", *argv]


# Run as root, by Python on the server: walks a path below a team's home one part at a
# time, each opened relative to its folder without following a link (openat, O_NOFOLLOW),
# and never blocks (O_NONBLOCK: a FIFO is refused, not waited on). No process of the team's
# uid takes part, so the team can neither stop it nor read its environment.
# argv: read HOME USER REL LIMIT (exit 3: absent; exit 4: refused, the reason on stderr;
# else the bytes on stdout) | kinds HOME USER REL... (a `rel<TAB>kind` line each).
_WALK = r"""
import errno, os, pwd, stat, sys
mode, home, user, rest = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
uid = pwd.getpwnam(user).pw_uid
DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
KIND = {stat.S_IFREG: "regular file", stat.S_IFDIR: "directory", stat.S_IFIFO: "fifo",
        stat.S_IFLNK: "symbolic link", stat.S_IFSOCK: "socket",
        stat.S_IFCHR: "character special file", stat.S_IFBLK: "block special file"}
class Refused(Exception): pass
def walk(rel):
    parts = [p for p in rel.split("/") if p]
    fd = os.open(home, DIR)
    for i, part in enumerate(parts[:-1]):
        st = os.stat(part, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise Refused("/".join(parts[: i + 1]) + " is a symbolic link")
        try:
            fd = os.open(part, DIR, dir_fd=fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise Refused("/".join(parts[: i + 1]) + " is a symbolic link")
            raise Refused(exc.strerror)
    return fd, parts[-1], os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
def kind(st):
    return KIND.get(stat.S_IFMT(st.st_mode), "other")
def read(rel, limit):
    fd, name, st = walk(rel)
    if stat.S_ISLNK(st.st_mode):
        raise Refused("a symbolic link")
    if not stat.S_ISREG(st.st_mode):
        raise Refused(f"a {kind(st)}, not a regular file")
    try:
        f = os.open(name, FILE, dir_fd=fd)
    except OSError as exc:
        raise Refused("a symbolic link" if exc.errno == errno.ELOOP else exc.strerror)
    st = os.fstat(f)
    if not stat.S_ISREG(st.st_mode):
        raise Refused(f"a {kind(st)}, not a regular file")
    if st.st_uid != uid:
        raise Refused(f"owned by uid {st.st_uid}, not by {user}")
    if st.st_size > limit:
        raise Refused(f"larger than {limit} bytes")
    sys.stdout.buffer.write(os.read(f, limit + 1))
if mode == "read":
    try:
        read(rest[0], int(rest[1]))
    except FileNotFoundError:
        sys.exit(3)
    except (Refused, OSError) as exc:
        print(exc.strerror if isinstance(exc, OSError) else exc, file=sys.stderr)
        sys.exit(4)
else:
    for rel in rest:
        try:
            k = kind(walk(rel)[2])
        except (Refused, OSError):
            k = "absent"
        print(f"{rel}\t{k}")
"""


def read_team_file(
    ex: Executor,
    user: str,
    home: str,
    rel: str,
    limit: int = MAX_TEAM_FILE,
    timeout: float = TEAM_TIMEOUT,
) -> str | None:
    """The text of `home/rel` in a team's home, read by root without a team process (_WALK);
    None when absent.

    Refused (RefusedFile) unless every part of the path below the home is no symbolic link
    and the file is a regular file owned by `user` of at most `limit` bytes.
    """
    path = f"{home}/{rel}"
    argv = ["python3", "-c", _WALK, "read", home, user, rel, str(limit)]
    rc, out, err = ex.run(argv, check=False, timeout=timeout)
    if rc == 3:
        return None
    reason = (err.strip().splitlines() or [f"exit {rc}"])[-1]
    if rc == 4:
        raise RefusedFile(f"refusing to read {path}: {reason}")
    if rc != 0:
        raise RefusedFile(f"cannot read {path} for {user}: {reason}")
    if len(out) > limit:  # it grew after it was checked
        raise RefusedFile(f"refusing to read {path}: larger than {limit} bytes")
    return out


KINDS = {"regular file": "file", "directory": "dir", "symbolic link": "link", "absent": "absent"}


def path_kinds(
    ex: Executor, user: str, home: str, rels: list[str], timeout: float = TEAM_TIMEOUT
) -> dict[str, str]:
    """What each path in a team's home is, looked at by root without a team process and
    without following any link (_WALK).

    `file`, `dir`, `link`, `absent` or `other` (a FIFO, a socket, ...); a path through a
    link is `absent` (the link itself is what the team has there).
    """
    _, out, _ = ex.run(["python3", "-c", _WALK, "kinds", home, user, *rels], timeout=timeout)
    kinds = dict.fromkeys(rels, "absent")
    for line in out.splitlines():
        rel, _, kind = line.partition("\t")
        if rel in kinds:
            kinds[rel] = KINDS.get(kind, "other")
    return kinds
