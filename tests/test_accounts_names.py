"""Bad names: a name is never read as an option, and one team's failure stops no other team.

Every command line accounts builds puts `--` before a user-supplied argument (a team or
user name); the Linux user's comment holds only what /etc/passwd can hold; a team whose
step fails is reported in one line and left for the next run, while the other teams are
provisioned.
"""

import subprocess
import sys
from pathlib import Path

import accounts_helpers
import pytest
from accounts_helpers import game_teams

from game_server.accounts import (
    apply,
    checks,
    config,
    game_cli,
    handout,
    provision,
    registry,
    teardown,
)
from game_server.accounts.executors import ExecError, LocalExecutor
from game_server.accounts.plan import Secrets, TeamPlan
from game_server.accounts.registry import Record
from game_server.accounts.roster import Team
from game_server.accounts.state import DbState, State
from game_server.common import team_names

sshd, setup = accounts_helpers.sshd, accounts_helpers.setup  # the fixtures
NAMES = ["-h", "--url", "--json"]  # names that look like options


class Recorder:
    """An executor that records every command and answers as a successful `teams add` does."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def run(self, argv, stdin=None, timeout=None, check=True, root=True):
        self.commands.append(list(argv))
        return 0, '{"token": "t0k3n"}', ""


def assert_after_dashes(commands: list[list[str]], value: str) -> None:
    """Every command ends in `-- value`: the value is an argument, never an option."""
    assert commands
    for argv in commands:
        assert argv[-2:] == ["--", value], argv


@pytest.mark.parametrize("name", NAMES)
def test_every_command_line_puts_dashes_before_a_name(name):
    ex = Recorder()
    settings = config.Settings(game_cmd=["game-server"])
    assert game_cli.register_in_game(ex, settings, name, 9000, "team-x") == "t0k3n"
    assert game_cli.new_game_token(ex, settings, name) == "t0k3n"
    game_cli.enable_in_game(ex, settings, name)
    game_cli.disable_in_game(ex, settings, name)
    assert len(ex.commands) == 4
    assert_after_dashes(ex.commands, name)

    ex, user = Recorder(), "team-x"
    plan = TeamPlan(Team(name, user, "", None, 2), Record(name, user), Secrets())
    apply.create_user(ex, settings, plan, State({}, {}, {}, DbState(), {}, set(), set(), {}))
    teardown.remove_user(ex, user, f"/home/{user}", None, print)
    record = Record(name, user, role=user, schema=user)
    checks.check_team(ex, settings, record, None, {}, f"/home/{user}")
    useradd = next(argv for argv in ex.commands if argv[0] == "useradd")
    assert ":" not in useradd[useradd.index("--comment") + 1]
    positional = [argv for argv in ex.commands if argv[0] in ("useradd", "userdel", "id")]
    assert len(positional) == 3  # (pkill -u, setpriv --reuid and psql -U: an option's value)
    assert_after_dashes(positional, user)


def test_a_name_like_an_option_reaches_the_game_as_a_name(tmp_path):
    game_cmd = [sys.executable, "-m", "game_server", "--db", f"sqlite:///{tmp_path / 'g.sqlite'}"]
    subprocess.run([*game_cmd, "init"], check=True, capture_output=True)
    settings = config.Settings(game_cmd=game_cmd)
    ex = LocalExecutor()
    try:
        token = game_cli.register_in_game(ex, settings, "-h", 19000, "team-x")
    except ExecError as exc:  # the name rule refuses a leading '-': as a name, not an option
        assert "-h" in str(exc) and "Usage" not in str(exc) and "No such option" not in str(exc)
        assert not team_names.name_ok("-h")
    else:
        assert len(token) >= 16 and game_teams(settings) == {"-h": True}


@pytest.mark.root
@pytest.mark.postgres
@pytest.mark.ssh
def test_a_name_with_a_colon_stops_no_run(setup):
    settings, roster = setup
    Path(roster).write_text("name,members,ssh_key\nColon:Team,Ann,\nBlue,Cy,\n")
    ex = LocalExecutor()
    if not team_names.name_ok("Colon:Team"):  # the name rule refuses ':' at the roster
        with pytest.raises(config.AccountsError, match=r"roster.csv:2: bad team name 'Colon:Team'"):
            provision.create(ex, settings, roster, echo=lambda line: None)
        assert not Path(settings.registry).exists()
        return
    provision.create(ex, settings, roster, echo=lambda line: None)  # the comment holds no ':'
    kept = handout.load(settings.handout_dir)
    assert set(kept) == {"Colon:Team", "Blue"}
    passwd = Path("/etc/passwd").read_text().splitlines()
    entry = next(line for line in passwd if line.startswith(kept["Colon:Team"]["user"] + ":"))
    assert entry.split(":")[4] == "workshop team Colon?Team"


class FailingUseradd(LocalExecutor):
    """The local executor, but `useradd` of one user fails (as it did for a ':' in a name)."""

    def __init__(self, user: str) -> None:
        super().__init__()
        self.user = user

    def run(self, argv, stdin=None, timeout=None, check=True, root=True):
        if argv[0] == "useradd" and argv[-1] == self.user:
            raise ExecError(f"useradd {self.user} failed (exit 3): invalid comment")
        return super().run(argv, stdin, timeout, check, root)


@pytest.mark.slow  # provisions teams for real (about 20 s)
@pytest.mark.root
@pytest.mark.postgres
@pytest.mark.ssh
def test_one_teams_failure_stops_no_other_team(setup):
    settings, roster = setup
    Path(roster).write_text("name,members,ssh_key\nAmber,,\nBroken,,\nCyan,,\n")
    broken = f"{settings.prefix}broken"
    lines: list[str] = []
    with pytest.raises(config.AccountsError, match=r"^1 team\(s\) not finished: Broken "):
        provision.create(FailingUseradd(broken), settings, roster, echo=lines.append)
    failure = f"{broken} (Broken): failed at create user: useradd {broken} failed (exit 3)"
    assert [line for line in lines if line.startswith(failure)], lines
    kept = handout.load(settings.handout_dir)
    assert set(kept) == {"Amber", "Cyan"}
    records = {t.name: t for t in registry.list_teams(LocalExecutor(), settings)}
    assert registry.interrupted_at(records["Broken"]) == "create user"
    assert registry.interrupted_at(records["Amber"]) is None
    assert game_teams(settings) == {"Amber": True, "Cyan": True}  # Broken stopped before

    lines.clear()
    provision.create(LocalExecutor(), settings, roster, echo=lines.append)  # finished now
    assert lines[0].endswith("(Amber): unchanged") and lines[2].endswith("(Cyan): unchanged")
    assert "interrupted before: finishing it" in lines[1]
    assert checks.check(LocalExecutor(), settings, echo=lines.append), lines
