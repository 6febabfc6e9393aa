"""One team's failure stops no other team: it is reported in one line and left for the next run."""

from pathlib import Path

import accounts_helpers
import pytest
from accounts_helpers import game_teams

from game_server.accounts import checks, config, handout, provision, registry
from game_server.accounts.executors import ExecError, LocalExecutor

sshd, setup = accounts_helpers.sshd, accounts_helpers.setup  # the fixtures


class FailingUseradd(LocalExecutor):
    """The local executor, but `useradd` of one user fails (as it did for a ':' in a name)."""

    def __init__(self, user: str) -> None:
        super().__init__()
        self.user = user

    def run(self, argv, stdin=None, timeout=None, check=True, root=True):
        if argv[0] == "useradd" and argv[-1] == self.user:
            raise ExecError(f"useradd {self.user} failed (exit 3): invalid comment")
        return super().run(argv, stdin, timeout, check, root)


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
    records = {t["name"]: t for t in registry.list_teams(LocalExecutor(), settings)}
    assert registry.interrupted_at(records["Broken"]) == "create user"
    assert registry.interrupted_at(records["Amber"]) is None
    assert game_teams(settings) == {"Amber": True, "Cyan": True}  # Broken stopped before

    lines.clear()
    provision.create(LocalExecutor(), settings, roster, echo=lines.append)  # finished now
    assert lines[0].endswith("(Amber): unchanged") and lines[2].endswith("(Cyan): unchanged")
    assert "interrupted before: finishing it" in lines[1]
    assert checks.check(LocalExecutor(), settings, echo=lines.append), lines
