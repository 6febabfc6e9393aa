"""The game's `game-server teams` commands, run on the server through the executor.

Accounts reach the game only through its command line (never its database), so the same
code works on the server and from the instructor's laptop over SSH. A team's name is always
the last argument, after `--`: a name like `-h` is a name, never an option.
"""

import json

from game_server.accounts.config import AccountsError, Command, Settings
from game_server.accounts.executors import Executor


def game_teams(ex: Executor, settings: Settings) -> dict[str, bool]:
    """The teams registered in the game, name -> active ({} without a game command)."""
    if not settings.game_cmd:
        return {}
    argv, stdin = settings.game("teams", "list", "--json")
    _, out, _ = ex.run(argv, stdin=stdin)
    try:
        return {t["name"]: bool(t["active"]) for t in json.loads(out)}
    except (ValueError, KeyError, TypeError) as exc:
        raise AccountsError(f"`teams list --json` gave no team list: {exc}") from None


def teams_argv(settings: Settings, command: str, name: str, *options: str) -> Command:
    """argv and stdin of `game-server teams COMMAND [OPTIONS] -- NAME` on the server."""
    return settings.game("teams", command, *options, "--", name)


def game_token(ex: Executor, settings: Settings, command: str, name: str, *options: str) -> str:
    """Run `game-server teams COMMAND --json ... -- NAME` (add, token); the token it prints."""
    argv, stdin = teams_argv(settings, command, name, *options, "--json")
    _, out, _ = ex.run(argv, stdin=stdin)
    try:
        token = json.loads(out)["token"]
    except (ValueError, KeyError, TypeError):
        token = None
    if not isinstance(token, str) or not token:
        raise AccountsError(f"`teams {command} {name}` printed no token: {out.strip()[:200]}")
    return token


def register_in_game(ex: Executor, settings: Settings, name: str, api_port: int, user: str) -> str:
    """Register team `name` in the game with its predict URL and Linux user; its token."""
    url = f"http://127.0.0.1:{api_port}/predict"
    return game_token(ex, settings, "add", name, "--url", url, "--user", user)


def new_game_token(ex: Executor, settings: Settings, name: str) -> str:
    """Issue team `name` a new token (the old one stops working); the new token."""
    return game_token(ex, settings, "token", name)


def enable_in_game(ex: Executor, settings: Settings, name: str) -> None:
    """Let team `name` play again (after `users delete` disabled it)."""
    argv, stdin = teams_argv(settings, "enable", name)
    ex.run(argv, stdin=stdin)


def disable_in_game(ex: Executor, settings: Settings, name: str) -> None:
    """Stop calling team `name` (its results stay); a team the game never knew is fine."""
    argv, stdin = teams_argv(settings, "disable", name)
    rc, _, err = ex.run(argv, stdin=stdin, check=False)
    if rc != 0 and "no team" not in err:
        raise AccountsError(f"teams disable {name} failed: {err.strip()}")
