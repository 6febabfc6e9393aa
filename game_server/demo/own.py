"""The player's own teams in a demo (`--team NAME=URL`): playing alone, beside the bots.

Someone without a workshop runs the participant starter on their laptop and adds it to
`game-server demo`. Their API is a team like any other: its URL must be on the demo game's
allow-list (loopback), it is registered with a token that is printed (the starter's
`feedback.py` needs it in `.env`), and the final report says how it did. The demo never
starts or stops it: it is theirs.
"""

from collections.abc import Callable
from dataclasses import dataclass

import requests

from game_server.common.team_names import NAME_RULE, name_ok
from game_server.play import hosts, protocols

EXAMPLE = "me=http://127.0.0.1:5000/predict"


@dataclass
class OwnTeam:
    """A team the player runs: its name, URL and, once registered, its token."""

    name: str
    url: str
    token: str = ""


def parse_team(spec: str) -> OwnTeam:
    """`NAME=URL` as a team; ValueError (one line) when it is not one."""
    name, sep, url = spec.partition("=")
    name, url = name.strip(), url.strip()
    if not sep or not name or not url:
        raise ValueError(f"{spec!r} is not NAME=URL, e.g. {EXAMPLE}")
    if not name_ok(name):
        raise ValueError(f"{spec!r}: bad team name {name!r}: {NAME_RULE}")
    return OwnTeam(name, url)


def check_teams(teams: list[OwnTeam], allowed: tuple[str, ...], taken: list[str]) -> None:
    """ValueError (one line) for a URL the demo game may not call or a name in use."""
    seen = {name.lower() for name in taken}
    for team in teams:
        if team.name.lower() in seen:
            raise ValueError(
                f"--team {team.name}: the name is taken (a bot's or another --team): choose another"
            )
        seen.add(team.name.lower())
        problem = hosts.url_problem(team.url, allowed, resolve=True)
        if problem is not None:
            raise ValueError(f"--team {team.name}: {problem} (the demo calls this machine only)")


def answering(team: OwnTeam) -> bool:
    """Whether the team's API answers its health route now."""
    http = requests.Session()
    http.trust_env = False  # loopback: never through a proxy from the environment
    try:
        return http.get(protocols.health_url("native", team.url), timeout=2).ok
    except requests.RequestException:
        return False


def announce(teams: list[OwnTeam], game_url: str, echo: Callable[[str], object]) -> None:
    """Each own team's token and whether its API answers, for the player's `.env`."""
    for team in teams:
        state = "answers" if answering(team) else "does NOT answer yet (start it: python main.py)"
        echo(f"your team {team.name}: {team.url} {state}")
        echo("  for its feedback (python feedback.py), these two lines in your starter's .env:")
        echo(f"    GAME_URL={game_url.rstrip('/')}")
        echo(f"    TEAM_TOKEN={team.token}")


def report(teams: list[OwnTeam], board: dict) -> list[str]:
    """The final report's lines on the player's teams: rank, points, against the baseline."""
    rows = {t["name"]: t for t in board["teams"]}
    baseline = board["reference"]["baseline_points"]
    lines = []
    for team in teams:
        t = rows.get(team.name)
        if t is None:
            lines.append(f"your team {team.name}: not on the leaderboard (never scored)")
            continue
        lines.append(
            f"your team {team.name}: rank {t['rank']} of {len(rows)}, {t['points']} points "
            f"({t['points'] - baseline:+.1f} vs the baseline), {t['correct']} correct, "
            f"{t['wrong']} wrong, {t['failed']} failed"
        )
    return lines
