"""`game-server teams` and `game-server allow`: who plays, and which hosts the game may call.

Kept apart from `cli/main.py` (the composition root) so each file stays one screenful of
commands; both write only through the registry: `play.teams` (its checks, the allow-list)
and `storage.teams` (its tables).
"""

import json
from urllib.parse import urlsplit

import click

from game_server.play import teams as registration
from game_server.storage import database, games
from game_server.storage import teams as registry


@click.group()
def teams() -> None:
    """Register, list, disable and enable teams in the game database; rotate tokens."""


@teams.command("add")
@click.argument("name")
@click.option(
    "--url", required=True, help="The team API's URL, e.g. http://127.0.0.1:9001/predict."
)
@click.option(
    "--protocol",
    type=click.Choice(["native", "mlflow", "openinference"]),
    default="native",
    show_default=True,
    help="How the customer talks to the API (GAME.md §3).",
)
@click.option("--model", default=None, help="Model name (openinference).")
@click.option(
    "--user",
    default=None,
    help="The team's Linux user on this server: only it may listen on a loopback URL.",
)
@click.option("--json", "as_json", is_flag=True, help="Print {name, token, url, protocol} as JSON.")
@click.pass_obj
def teams_add(
    obj: dict,
    name: str,
    url: str,
    protocol: str,
    model: str | None,
    user: str | None,
    as_json: bool,
) -> None:
    """Register a team and print its token (shown this once only)."""
    try:
        engine = database.command_engine(obj["db"])
        token = registration.add_team(engine, name, url, protocol, model, user=user)
    except (registry.TeamError, games.NotInitialised) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps({"name": name, "token": token, "url": url, "protocol": protocol}))
    else:
        click.echo(f"team {name} added; its token (shown once, keep it): {token}")


@teams.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--prometheus",
    is_flag=True,
    help="Print the active teams' APIs as Prometheus file_sd targets (labelled by team).",
)
@click.pass_obj
def teams_list(obj: dict, as_json: bool, prometheus: bool) -> None:
    """List the registered teams."""
    try:
        with database.command_engine(obj["db"]).connect() as conn:
            rows = registry.list_teams(conn)
    except games.NotInitialised as exc:
        raise click.ClickException(str(exc)) from None
    if prometheus:
        click.echo(json.dumps(scrape_targets(rows), indent=2))
        return
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(
            "no teams yet: `game-server users create ROSTER.csv` on the workshop server, "
            "or `game-server teams add NAME --url URL`"
        )
    for r in rows:
        state = "active" if r["active"] else "disabled"
        model = f" model={r['model']}" if r["model"] else ""
        click.echo(f"{r['name']:<40} {state:<8} {r['protocol']:<13} {r['url']}{model}")


def scrape_targets(rows: list[dict]) -> list[dict]:
    """Prometheus `file_sd` groups: each active team's API host:port, labelled `team`."""
    groups = []
    for r in rows:
        url = urlsplit(r["url"])
        if r["active"] and url.hostname and url.port:
            host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
            groups.append({"targets": [f"{host}:{url.port}"], "labels": {"team": r["name"]}})
    return groups


def _set_active(obj: dict, name: str, active: bool) -> None:
    """Enable or disable a team, with a one-line error when that is refused."""
    try:
        registry.set_active(database.command_engine(obj["db"]), name, active)
    except (registry.TeamError, games.NotInitialised) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"team {name} {'enabled' if active else 'disabled'}")


@teams.command("disable")
@click.argument("name")
@click.pass_obj
def teams_disable(obj: dict, name: str) -> None:
    """Stop sending requests to a team (its results and token stay)."""
    _set_active(obj, name, False)


@teams.command("enable")
@click.argument("name")
@click.pass_obj
def teams_enable(obj: dict, name: str) -> None:
    """Send requests to a disabled team again (its results and token stay)."""
    _set_active(obj, name, True)


@teams.command("token")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print {name, token} as JSON.")
@click.pass_obj
def teams_token(obj: dict, name: str, as_json: bool) -> None:
    """Give a team a new token and print it (shown this once only); the old one stops working."""
    try:
        token = registry.rotate_token(database.command_engine(obj["db"]), name)
    except (registry.TeamError, games.NotInitialised) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps({"name": name, "token": token}))
    else:
        click.echo(f"team {name} has a new token (shown once, keep it): {token}")


@click.command("allow")
@click.argument("entries", nargs=-1)
@click.pass_obj
def allow(obj: dict, entries: tuple[str, ...]) -> None:
    """Add hosts, IP addresses or networks (192.168.1.0/24) to the allow-list; without
    any, print it. The running game calls them within a second, no restart."""
    try:
        if entries:
            listed = registration.allow_hosts(database.command_engine(obj["db"]), list(entries))
        else:
            with database.command_engine(obj["db"]).connect() as conn:
                listed = registration.allowed_hosts(conn)
    except (registry.TeamError, games.NotInitialised) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"allow-list: {', '.join(listed)}")
