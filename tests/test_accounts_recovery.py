"""A `users create` killed at any step is finished by the next `create` or undone by `delete`.

Each case runs `users create` in a child process that kills itself (SIGKILL: no clean-up,
no `finally`) right after the first command of one step has run (or as the step starts,
for a step that runs none), so that step has half happened. The team must then be in the
registry with its journal; a second `create` must finish it (the team passes `users
check`, logging in for real, and its .env holds a token the game knows), and, from the same
kind of kill, `delete` must leave nothing of it (user, home, login profile, role, schema,
game registration, registry entry).
"""

import dataclasses
import json
import signal
import subprocess
import sys
from pathlib import Path

import accounts_helpers
import psycopg
import pytest
from accounts_helpers import ADMIN, game_teams, token_owner

from game_server.accounts import checks, handout, provision, registry, teardown
from game_server.accounts.executors import LocalExecutor
from game_server.accounts.plan import Step

pytestmark = [pytest.mark.root, pytest.mark.postgres, pytest.mark.ssh, pytest.mark.slow]
sshd, setup = accounts_helpers.sshd, accounts_helpers.setup  # the fixtures

# Run in a child process: argv = settings (JSON), roster, the step to be killed at.
KILLER = """
import json, os, signal, sys
from game_server.accounts import apply, config, provision
from game_server.accounts.executors import LocalExecutor
from game_server.accounts.plan import Step

settings = config.Settings(**json.loads(sys.argv[1]))
step = Step(sys.argv[3])
real = apply.STEPS[step]


class KillAfterOne:
    def __init__(self, ex):
        self.ex = ex

    def run(self, *args, **kwargs):
        self.ex.run(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)


def killed(ex, settings, plan, state):
    real(KillAfterOne(ex), settings, plan, state)
    os.kill(os.getpid(), signal.SIGKILL)  # a step that runs no command


apply.STEPS[step] = killed
provision.create(LocalExecutor(), settings, sys.argv[2], echo=print)
"""
NEW_TEAM = [
    Step.ASSIGN_PORTS,
    Step.CREATE_USER,
    Step.SET_PASSWORD,
    Step.WRITE_SSH_KEY,
    Step.CREATE_ROLE_AND_SCHEMA,
    Step.REGISTER_IN_GAME,
    Step.COPY_STARTER,
    Step.WRITE_ENV,
    Step.WRITE_PROFILE,
]
AGAIN = [Step.ENABLE_IN_GAME, Step.NEW_GAME_TOKEN]  # a team deleted, then created again


def kill_create_at(settings, roster: Path, step: Step) -> registry.Record:
    """Run `users create` in a child killed at `step`; the team's registry record after."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLER,
            json.dumps(dataclasses.asdict(settings)),
            str(roster),
            step.value,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    (record,) = registry.list_teams(LocalExecutor(), settings)
    assert registry.interrupted_at(record) == step.value
    return record


def assert_gone(settings, record: registry.Record) -> None:
    """Nothing of the team is left: user, home, profile, role, schema, game, registry."""
    user = record.user
    assert f"\n{user}:" not in "\n" + Path("/etc/passwd").read_text()
    assert not Path("/home", user).exists()
    assert not Path(settings.profile_dir, f"workshop-{user}.sh").exists()
    with psycopg.connect(ADMIN + "postgres") as conn:
        assert (
            conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (user,)).fetchone()[0]
            == 0
        )
        has_db = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (settings.workshop_db,)
        ).fetchone()[0]
    if has_db:  # the init SQL ran (at the team's first database step)
        with psycopg.connect(ADMIN + settings.workshop_db) as conn:
            assert (
                conn.execute(
                    "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (user,)
                ).fetchone()[0]
                == 0
            )
    assert game_teams(settings).get(record.name) in (None, False)  # never, or disabled
    assert registry.list_teams(LocalExecutor(), settings) == []


def assert_complete(settings, name: str, key: str) -> None:
    """The team is finished: no journal, `users check` passes, its .env and game agree."""
    (record,) = registry.list_teams(LocalExecutor(), settings)
    assert record.journal is None
    lines: list[str] = []
    assert checks.check(LocalExecutor(), settings, echo=lines.append), lines
    team = handout.load(settings.handout_dir)[name]
    home = Path("/home", team["user"])
    env = (home / "participant_starter" / ".env").read_text()
    assert f"TEAM_TOKEN={team['token']}\n" in env and token_owner(settings, team["token"]) == name
    assert f"DATABASE_URL={team['database_url']}\n" in env
    assert (home / ".ssh" / "authorized_keys").read_text() == key + "\n"
    assert (home / "participant_starter" / "main.py").is_file()
    assert game_teams(settings)[name] is True


@pytest.mark.parametrize("step", NEW_TEAM + AGAIN, ids=lambda s: s.value.replace(" ", "-"))
def test_a_run_killed_at_any_step_is_finished_or_undone(setup, sshd, step):
    settings, roster_path = setup
    key = sshd[3]
    roster = Path(roster_path)
    ex = LocalExecutor()
    for name, finish in (("Undone", False), ("Finished", True)):
        roster.write_text(f"name,members,ssh_key\n{name},Ann,{key}\n")
        if step in AGAIN:  # created and deleted before: this run enables it again
            provision.create(ex, settings, str(roster), echo=lambda line: None)
            teardown.delete(ex, settings, None, echo=lambda line: None)
        record = kill_create_at(settings, roster, step)
        if finish:
            lines: list[str] = []
            provision.create(ex, settings, str(roster), echo=lines.append)
            assert "interrupted before: finishing it" in lines[0], lines
            assert_complete(settings, name, key)
        teardown.delete(ex, settings, [name], echo=lambda line: None)
        assert_gone(settings, record)
