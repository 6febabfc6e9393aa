"""A team's login shell, for real over sshd: the shared venv first on PATH, its settings set.

`users create` writes /etc/profile.d/workshop-<user>.sh (root's, 0644, no secret); a login
shell of that user (and only of that user) gets the teams' venv first on PATH and the keys
of its own ~/participant_starter/.env exported, parsed as text; a broken .env never breaks
the login; `users delete` removes the snippet.
"""

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import accounts_helpers
import pytest
from accounts_helpers import as_user, ssh_as
from dotenv import dotenv_values

from game_server.accounts import handout, provision, teardown
from game_server.accounts.executors import LocalExecutor
from game_server.accounts.starter import ENV_KEYS

pytestmark = [pytest.mark.root, pytest.mark.postgres, pytest.mark.ssh, pytest.mark.slow]
sshd, setup = accounts_helpers.sshd, accounts_helpers.setup  # the fixtures
SHOW = 'command -v python; python -c "import sys; print(sys.prefix)"; ' + "; ".join(
    f'printf "%s\\n" "{key}=${key}"' for key in ENV_KEYS
)


@pytest.fixture
def team_venv():
    """A stand-in for /opt/workshop/venv that a team user can run (from the system's Python)."""
    venv = Path(f"/tmp/gs-test-venv-{uuid.uuid4().hex[:8]}")
    python = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)
    os.chmod(venv, 0o755)
    try:
        yield str(venv)
    finally:
        shutil.rmtree(venv, ignore_errors=True)


def login(sshd, team: dict, command: str) -> dict[str, str]:
    """Log in over SSH as the team, run `command` in a login shell; `KEY=value` lines."""
    port, known_hosts, _, _ = sshd
    out = ssh_as(port, known_hosts, team["user"], team["password"], f"bash -l -c '{command}'")
    lines = out.splitlines()
    values = dict(line.split("=", 1) for line in lines if "=" in line)
    values["_lines"] = "\n".join(lines)
    return values


def test_a_teams_login_shell_has_its_python_and_settings(setup, sshd, team_venv):
    settings, roster = setup
    settings.team_venv = team_venv
    Path(roster).write_text('name,members,ssh_key\nRed "R&D" Team,Ann,\n')
    ex = LocalExecutor()
    provision.create(ex, settings, roster, echo=lambda line: None)
    team = handout.load(settings.handout_dir)['Red "R&D" Team']
    home = Path("/home") / team["user"]
    env_path = home / "participant_starter" / ".env"

    got = login(sshd, team, SHOW)
    assert got["_lines"].splitlines()[:2] == [f"{team_venv}/bin/python", team_venv]
    assert got["PORT"] == str(team["api_port"]) and got["JUPYTER_PORT"] == str(team["jupyter_port"])
    assert got["DEBUG_PORT"] == str(team["debug_port"])
    assert len({team["api_port"], team["jupyter_port"], team["debug_port"]}) == 3
    assert settings.api_ports[0] <= team["debug_port"] <= settings.api_ports[1]
    assert got["TEAM_TOKEN"] == team["token"] and got["DATABASE_URL"] == team["database_url"]
    assert got["GAME_URL"] == settings.game_url and got["TEAM_NAME"] == 'Red "R&D" Team'

    # The .env: the team's, 0600, every key; the same values as the login shell.
    st = env_path.stat()
    assert st.st_mode & 0o777 == 0o600 and st.st_uid == home.stat().st_uid
    assert dotenv_values(env_path) == {k: got[k] for k in ENV_KEYS}  # as the starter reads it
    # The snippet: root's, 0644, no secret in it.
    snippet = Path(settings.profile_dir) / f"workshop-{team['user']}.sh"
    text = snippet.read_text()
    assert snippet.stat().st_uid == 0 and snippet.stat().st_mode & 0o777 == 0o644
    for secret in (team["token"], team["password"], team["db_password"]):
        assert secret not in text
    # Only that user's login shells: root's gets neither the venv nor the settings.
    show = 'echo "$PATH|${TEAM_TOKEN:-none}"'
    env = {"USER": "root", "HOME": "/root"}
    root = subprocess.run(["bash", "-l", "-c", show], capture_output=True, text=True, env=env)
    assert team_venv not in root.stdout and root.stdout.strip().endswith("|none")


def test_a_broken_env_never_breaks_the_login_and_nothing_in_it_runs(setup, sshd, team_venv):
    settings, roster = setup
    settings.team_venv = team_venv
    Path(roster).write_text("name,members,ssh_key\nRed,Ann,\n")
    ex = LocalExecutor()
    provision.create(ex, settings, roster, echo=lambda line: None)
    team = handout.load(settings.handout_dir)["Red"]
    user, env = team["user"], f"/home/{team['user']}/participant_starter/.env"

    # Only the known keys, as text: nothing runs, nothing else is exported, PATH stays.
    script = (
        "printf '%s\\n' 'TEAM_TOKEN=$(touch $HOME/pwned)' 'PORT=\"7\"' 'PATH=/nowhere' "
        "'EVIL=1' 'garbage line' 'DEBUG_PORT' > \"$1\""
    )
    assert as_user(user, script, env).returncode == 0
    got = login(sshd, team, SHOW + '; echo "EVIL=${EVIL:-unset}"; echo "pwned=$(ls ~/pwned 2>&1)"')
    assert got["TEAM_TOKEN"] == "$(touch $HOME/pwned)" and got["PORT"] == "7"
    assert got["EVIL"] == "unset" and "No such file" in got["pwned"]
    assert got["_lines"].splitlines()[0] == f"{team_venv}/bin/python"

    # A FIFO, a link to /dev/zero, a folder: the login goes on, without the settings.
    for plant in ('mkfifo "$1"', 'ln -s /dev/zero "$1"', 'mkdir "$1"'):
        assert as_user(user, f'rm -rf "$1"; {plant}', env).returncode == 0
        got = login(sshd, team, 'echo "PORT=${PORT:-unset}"; echo "alive=yes"')
        assert got["alive"] == "yes" and got["PORT"] == "unset", plant

    teardown.delete(ex, settings, ["Red"], echo=lambda line: None)
    assert not (Path(settings.profile_dir) / f"workshop-{user}.sh").exists()
