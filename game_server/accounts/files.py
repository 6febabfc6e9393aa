"""Files on the server, through an executor: root's own files, and files in a team's home.

Every file access of provisioning goes through here (the content travels on stdin, paths
as arguments, never in a shell string).

Root never trusts a path a team controls. Root's own files (the registry) are read and
written as root (`read_file`, `write_file`). Everything inside a team's home runs as the
team user (`as_team`: `setpriv`, no PAM session), so the kernel lets it reach only what the
team itself may read or write: a write is a temp file renamed over the target (a symlink a
team plants is replaced, never followed); a read (`read_team_file`) walks the path from the
home without following any symbolic link, accepts only a regular file the team owns, opens
it without following a link and without blocking (a FIFO cannot hang it) and reads at most
`MAX_TEAM_FILE` bytes. Anything else is refused with one line naming the file
(`RefusedFile`).

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
    return [f"PATH={TEAM_PATH}", f"HOME={home}", "LANG=C.UTF-8", f"USER={user}",
            f"LOGNAME={user}"]  # fmt: skip


def as_team(user: str, home: str, argv: list[str]) -> list[str]:
    """`argv` run as the team user `user` (never as root in the team's home).

    `env -i` empties the environment before the uid changes (and `-C /` leaves root's
    working folder); `setpriv` changes the uid and group in place and execs `argv` (no PAM
    session that could add variables, no fork). Its group is the user's own (`useradd
    --user-group`).
    """
    ids = [f"--reuid={user}", f"--regid={user}", "--init-groups"]
    return ["env", "-i", "-C", "/", *team_env(user, home), "setpriv", *ids, "--", *argv]


# Run as the team user: $1 the home, $2 the path inside it, $3 the bound. Exit 3: absent;
# exit 4: refused (the reason on stderr); else the file's bytes on stdout.
_READ_TEAM_FILE = r"""
set -f
home=$1 rel=$2 max=$3 p=$1
IFS=/
for c in $rel; do
  p=$p/$c
  if ! kind=$(LC_ALL=C stat -c %F -- "$p" 2>&1); then
    case $kind in *"No such file or directory"*) exit 3 ;; esac
    printf '%s\n' "${kind##*: }" >&2; exit 4
  fi
  if [ "$kind" = "symbolic link" ]; then
    if [ "$p" = "$home/$rel" ]; then echo "a symbolic link" >&2
    else printf '%s is a symbolic link\n' "${p#"$home/"}" >&2; fi
    exit 4
  fi
done
IFS=' '
case $kind in
  "regular file" | "regular empty file") ;;
  *) printf 'a %s, not a regular file\n' "$kind" >&2; exit 4 ;;
esac
set -- $(LC_ALL=C stat -c '%u %s' -- "$p")
if [ "$1" != "$(id -u)" ]; then
  printf 'owned by uid %s, not by %s\n' "$1" "$(id -un)" >&2; exit 4
fi
if [ "$2" -gt "$max" ]; then printf 'larger than %s bytes\n' "$max" >&2; exit 4; fi
exec dd if="$p" iflag=nofollow,nonblock,fullblock bs=$((max + 1)) count=1 status=none
"""


def read_team_file(
    ex: Executor,
    user: str,
    home: str,
    rel: str,
    limit: int = MAX_TEAM_FILE,
    timeout: float = TEAM_TIMEOUT,
) -> str | None:
    """The text of `home/rel` in a team's home, read as the team user; None when absent.

    Refused (RefusedFile) unless every part of the path below the home is no symbolic link
    and the file is a regular file owned by `user` of at most `limit` bytes.
    """
    path = f"{home}/{rel}"
    argv = as_team(user, home, ["sh", "-c", _READ_TEAM_FILE, "sh", home, rel, str(limit)])
    rc, out, err = ex.run(argv, check=False, timeout=timeout)
    if rc == 3:
        return None
    reason = (err.strip().splitlines() or [f"exit {rc}"])[-1]
    if rc == 4:
        raise RefusedFile(f"refusing to read {path}: {reason}")
    if rc != 0:
        raise RefusedFile(f"cannot read {path} as {user}: {reason}")
    if len(out) > limit:  # it grew after it was checked
        raise RefusedFile(f"refusing to read {path}: larger than {limit} bytes")
    return out


# Run as the team user: $1 the home, then paths inside it; a `path<TAB>kind` line each.
_PATH_KINDS = r"""
home=$1; shift
for rel; do
  kind=$(LC_ALL=C stat -c %F -- "$home/$rel" 2>/dev/null) || kind=absent
  printf '%s\t%s\n' "$rel" "$kind"
done
"""
KINDS = {"regular file": "file", "regular empty file": "file", "directory": "dir",
         "symbolic link": "link", "absent": "absent"}  # fmt: skip


def path_kinds(
    ex: Executor, user: str, home: str, rels: list[str], timeout: float = TEAM_TIMEOUT
) -> dict[str, str]:
    """What each path in a team's home is, seen by the team user, not following a last link.

    `file`, `dir`, `link`, `absent` or `other` (a FIFO, a socket, ...); a path the team
    user cannot reach is `absent`.
    """
    argv = as_team(user, home, ["sh", "-c", _PATH_KINDS, "sh", home, *rels])
    _, out, _ = ex.run(argv, timeout=timeout)
    kinds = dict.fromkeys(rels, "absent")
    for line in out.splitlines():
        rel, _, kind = line.partition("\t")
        if rel in kinds:
            kinds[rel] = KINDS.get(kind, "other")
    return kinds
