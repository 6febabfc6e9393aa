"""Files on the server, through an executor: read one, write one atomically, which exist.

Every file access of provisioning goes through here (the content travels on stdin, paths
as arguments, never in a shell string). A write inside a team's home runs as the team user
(`runuser`), so a symlink a team plants cannot redirect a root write.
"""

from game_server.accounts.executors import ExecError, Executor


def read_file(ex: Executor, path: str) -> str | None:
    """The text of `path` on the server, or None when it does not exist."""
    script = 'if [ -e "$1" ]; then exec cat -- "$1"; else exit 3; fi'
    rc, out, err = ex.run(["sh", "-c", script, "sh", path], check=False)
    if rc == 3:
        return None
    if rc != 0:
        raise ExecError(f"cannot read {path}: {err.strip() or f'exit {rc}'}")
    return out


def write_file(
    ex: Executor, path: str, content: str | bytes, mode: str = "600", user: str | None = None
) -> None:
    """Write `path` atomically (temp + rename), created with `mode`; as `user` if given."""
    script = (
        'set -e; umask 077; t=$(mktemp "$1.XXXXXX"); trap \'rm -f "$t"\' EXIT; '
        'cat > "$t"; chmod "$2" "$t"; mv -f "$t" "$1"; trap - EXIT'
    )
    argv = ["sh", "-c", script, "sh", path, mode]
    ex.run(["runuser", "-u", user, "--", *argv] if user else argv, stdin=content)


def existing_paths(ex: Executor, paths: list[str]) -> set[str]:
    """Which of `paths` exist on the server (one command for all)."""
    if not paths:
        return set()
    script = 'for f; do if [ -e "$f" ]; then printf "%s\\n" "$f"; fi; done'
    _, out, _ = ex.run(["sh", "-c", script, "sh", *paths])
    return set(out.splitlines())
