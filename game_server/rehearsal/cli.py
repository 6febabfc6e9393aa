"""`game-server rehearse --teams N`: the dress rehearsal (run.py), as a command."""

import click

from game_server.accounts import limits
from game_server.accounts.config import TEAM_VENV, Settings, TeamLimits
from game_server.accounts.levels import COMPLETE, LEVELS
from game_server.common.extras import require
from game_server.common.settings import PSQL_ADMIN
from game_server.common.settings import option as setting_option


@click.command("rehearse")
@click.option(
    "--teams",
    type=click.IntRange(1, 200),
    required=True,
    help="How many temporary teams (bots) to rehearse with.",
)
@click.option(
    "--level",
    type=click.Choice(LEVELS),
    default=COMPLETE,
    show_default=True,
    help="The starter's level (exercises: the bots fill in the solutions).",
)
@click.option(
    "--minutes",
    type=click.FloatRange(2, 120),
    default=6.0,
    show_default=True,
    help="The whole game, every phase, compressed to about this long.",
)
@click.option("--ssh-port", type=click.IntRange(1, 65535), default=22, show_default=True)
@click.option(
    "--known-hosts",
    type=click.Path(dir_okay=False),
    help="The SSH server's host key (default: this server's /etc/ssh keys).",
)
@setting_option(PSQL_ADMIN)
@click.option("--workshop-db", default="workshop", show_default=True)
@click.option("--team-venv", default=TEAM_VENV, show_default=True)
@click.option(
    "--limits",
    "limits_text",
    default=limits.text(TeamLimits()),
    show_default=True,
    help="Each team's fair share, as `users create --limits`.",
)
def rehearse_command(
    teams: int,
    level: str,
    minutes: float,
    ssh_port: int,
    known_hosts: str | None,
    psql_admin: str,
    workshop_db: str,
    team_venv: str,
    limits_text: str,
) -> None:
    """Rehearse the workshop with N bot teams on this server (as root), then clean up."""
    import shlex

    require("accounts", "game-server rehearse")  # the bots log in over SSH (paramiko)
    from game_server.rehearsal.run import Options, rehearse

    settings = Settings(workshop_db=workshop_db, team_venv=team_venv)
    if psql_admin:
        settings.psql_admin = shlex.split(psql_admin)
    try:
        settings.limits = limits.parse(limits_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--limits") from None
    opts = Options(teams, level, minutes, ssh_port, known_hosts, settings, click.echo)
    if not rehearse(opts).ok:
        raise SystemExit(1)
