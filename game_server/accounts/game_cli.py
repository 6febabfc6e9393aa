"""The game's `game-server teams` commands, run on the server through the executor.

Accounts reach the game only through its command line (never its database), so the same
code works on the server and from the instructor's laptop over SSH.
"""

import json

from game_server.accounts.config import AccountsError, Settings
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


def game_token(ex: Executor, settings: Settings, *args: str) -> str:
    """Run `game-server teams <args> --json` (add, token) on the server; the token it prints."""
    argv, stdin = settings.game("teams", *args, "--json")
    _, out, _ = ex.run(argv, stdin=stdin)
    try:
        token = json.loads(out)["token"]
    except (ValueError, KeyError, TypeError):
        token = None
    if not isinstance(token, str) or not token:
        raise AccountsError(f"`teams {args[0]} {args[1]}` printed no token: {out.strip()[:200]}")
    return token


def register_in_game(ex: Executor, settings: Settings, name: str, api_port: int) -> str:
    """Register team `name` in the game with its predict URL; its token."""
    return game_token(ex, settings, "add", name, "--url", f"http://127.0.0.1:{api_port}/predict")


def new_game_token(ex: Executor, settings: Settings, name: str) -> str:
    """Issue team `name` a new token (the old one stops working); the new token."""
    return game_token(ex, settings, "token", name)


def enable_in_game(ex: Executor, settings: Settings, name: str) -> None:
    """Let team `name` play again (after `users delete` disabled it)."""
    argv, stdin = settings.game("teams", "enable", name)
    ex.run(argv, stdin=stdin)


def disable_in_game(ex: Executor, settings: Settings, name: str) -> None:
    """Stop calling team `name` (its results stay); a team the game never knew is fine."""
    argv, stdin = settings.game("teams", "disable", name)
    rc, _, err = ex.run(argv, stdin=stdin, check=False)
    if rc != 0 and "no team" not in err:
        raise AccountsError(f"teams disable {name} failed: {err.strip()}")
