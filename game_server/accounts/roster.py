"""The roster CSV: one team a line (name, members, ssh_key), validated before anything changes.

Columns: `name` (required), `members` (optional, free text), `ssh_key` (optional, one
OpenSSH public key line). A header row is required. The Linux user name is a fixed prefix
(default `team-`) plus the slug of the team name (lower case, runs of other characters
turned into `-`); it must match `^[a-z_][a-z0-9_-]*$`, be at most 32 characters, not be a
reserved name and not belong to an existing system user that the provisioning registry
did not create. Every bad row is reported, one line each (`file:line: reason`), in one
RosterError raised before any change is made.
"""

import csv
import io
import re
from dataclasses import dataclass

from game_server.common.team_names import NAME_RULE as GAME_NAME_RULE
from game_server.common.team_names import name_ok as game_name_ok

DEFAULT_PREFIX = "team-"
USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]*$")
MAX_USER_LEN = 32
RESERVED = frozenset(
    [
        "root",
        "daemon",
        "bin",
        "sys",
        "sync",
        "games",
        "man",
        "lp",
        "mail",
        "news",
        "uucp",
        "proxy",
        "www-data",
        "backup",
        "list",
        "irc",
        "gnats",
        "nobody",
        "nogroup",
        "postgres",
        "admin",
        "administrator",
        "sudo",
        "wheel",
        "adm",
        "staff",
        "operator",
        "sshd",
        "systemd-network",
        "systemd-resolve",
        "messagebus",
        "syslog",
        "ubuntu",
        "debian",
        "jupyter",
        "workshop",
        "workshop_team",
        "game-server",
    ]
)
KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
SSH_KEY = re.compile(r"^(\S+) [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?$")


class RosterError(ValueError):
    """A roster that is refused; one line per bad row, `file:line: reason`."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Team:
    """One validated roster row."""

    name: str  # the team's name in the game
    user: str  # the Linux user (also the PostgreSQL role and schema)
    members: str
    ssh_key: str | None
    line: int  # the roster line, for messages


def slug(name: str) -> str:
    """Lower-case `name`, runs of anything but a-z0-9 become one `-`, no `-` at the ends."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def user_name(name: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The Linux user name of team `name`."""
    return prefix + slug(name)


def check_prefix(prefix: str) -> None:
    """Raise RosterError unless `prefix` can start a valid user name."""
    if not prefix or not USER_NAME.match(prefix) or len(prefix) > 16:
        raise RosterError([f"bad prefix {prefix!r}: 1-16 characters matching [a-z_][a-z0-9_-]*"])


def user_problem(user: str, existing_users: set[str], ours: set[str]) -> str | None:
    """Why `user` cannot be a team's Linux user, or None."""
    if not USER_NAME.match(user):
        return f"user name {user!r} does not match {USER_NAME.pattern}"
    if len(user) > MAX_USER_LEN:
        return f"user name {user!r} is longer than {MAX_USER_LEN} characters"
    if user in RESERVED:
        return f"user name {user!r} is reserved"
    if user in existing_users and user not in ours:
        return f"user name {user!r} belongs to an existing system user not created by us"
    return None


def key_problem(key: str) -> str | None:
    """Why `key` is not one OpenSSH public key line, or None."""
    match = SSH_KEY.match(key)
    if not match or match.group(1) not in KEY_TYPES:
        return "ssh_key is not one OpenSSH public key line (e.g. 'ssh-ed25519 AAAA... me')"
    return None


def name_problem(name: str, seen_names: dict[str, int]) -> str | None:
    """Why `name` cannot be a team's name (given the names of earlier rows), or None."""
    if not game_name_ok(name):
        return f"bad team name {name!r}: {GAME_NAME_RULE}"
    if name.lower() in seen_names:
        return f"duplicate team name {name!r} (line {seen_names[name.lower()]})"
    if not slug(name):
        return f"team name {name!r} has no letters or digits for a user name"
    return None


def split_header(text: str, path: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header's column names and the non-blank rows after it, with their line numbers."""
    rows = list(csv.reader(io.StringIO(text)))
    content = [(n, r) for n, r in enumerate(rows, start=1) if any(c.strip() for c in r)]
    if not content:
        raise RosterError(
            [f"{path}: the roster is empty (expected a header: name,members,ssh_key)"]
        )
    header_line, header = content[0]
    columns = [c.strip().lower() for c in header]
    if "name" not in columns or set(columns) - {"name", "members", "ssh_key"}:
        raise RosterError(
            [f"{path}:{header_line}: the header must be name[,members][,ssh_key], got {header}"]
        )
    if len(content) == 1:
        raise RosterError([f"{path}: the roster has no teams, only a header"])
    return columns, content[1:]


def parse_roster(
    text: str,
    path: str = "roster.csv",
    prefix: str = DEFAULT_PREFIX,
    existing_users: set[str] | frozenset[str] = frozenset(),
    ours: set[str] | frozenset[str] = frozenset(),
) -> list[Team]:
    """Validate the roster text; the teams, or RosterError listing every bad row."""
    check_prefix(prefix)
    columns, rows = split_header(text, path)
    problems: list[str] = []
    teams: list[Team] = []
    seen_names: dict[str, int] = {}  # lower-case name -> line
    seen_users: dict[str, int] = {}  # user -> line
    for line, row in rows:
        if len(row) > len(columns):
            problems.append(f"{path}:{line}: {len(row)} fields, the header has {len(columns)}")
            continue
        cell = dict(zip(columns, [c.strip() for c in row], strict=False))
        name, key = cell.get("name", ""), cell.get("ssh_key") or None
        user = user_name(name, prefix)
        reason = name_problem(name, seen_names)
        if reason is None:
            reason = user_problem(user, set(existing_users), set(ours))
        if reason is None and user in seen_users:
            reason = f"user name {user!r} is the same as line {seen_users[user]}'s"
        if reason is None and key:
            reason = key_problem(key)
        if reason:
            problems.append(f"{path}:{line}: {reason}")
            continue
        seen_names[name.lower()], seen_users[user] = line, line
        teams.append(Team(name, user, cell.get("members", ""), key, line))
    if problems:
        raise RosterError(problems)
    return teams


def load_roster(
    path: str,
    prefix: str = DEFAULT_PREFIX,
    existing_users: set[str] | frozenset[str] = frozenset(),
    ours: set[str] | frozenset[str] = frozenset(),
) -> list[Team]:
    """Read and validate the roster file at `path` (see parse_roster)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError([f"{path}: cannot read the roster: {exc}"]) from None
    return parse_roster(text, path, prefix, existing_users, ours)
