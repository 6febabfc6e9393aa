"""The fair-share settings: `--limits` parsed, and the text each mechanism writes (limits.py)."""

import subprocess

import pytest

from game_server.accounts import limits
from game_server.accounts.config import TeamLimits
from game_server.processes import oom


def test_limits_parse_and_print_back():
    """`--limits` takes any of cpu/memory/tasks (others stay default), or off."""
    assert limits.parse("memory=512M") == TeamLimits(memory_max_mb=512)
    assert limits.parse("cpu=50, tasks=100") == TeamLimits(cpu_weight=50, tasks_max=100)
    assert limits.parse("OFF").enabled is False
    assert limits.parse(limits.text(TeamLimits())) == TeamLimits()
    assert limits.text(limits.parse("off")) == "off"


@pytest.mark.parametrize("bad", ["memory=lots", "disk=5", "memory=10", "cpu=0", "cpu=20000"])
def test_bad_limits_are_refused_in_one_line(bad):
    """Anything else is a one-line error naming the part."""
    with pytest.raises(ValueError) as error:
        limits.parse(bad)
    assert "\n" not in str(error.value)


def test_the_slice_the_pam_file_and_the_cgroup_weight():
    """systemd's drop-in, pam_limits' line and cgroup v1's shares say the same limits."""
    mine = TeamLimits(cpu_weight=50, memory_max_mb=300, tasks_max=99)
    text = limits.slice_text(mine)
    assert "[Slice]" in text and "CPUWeight=50" in text and "MemoryMax=300M" in text
    assert "TasksMax=99" in text
    assert limits.pam_text("team-x", mine).endswith("team-x hard nproc 99\n")
    assert limits.cpu_shares(TeamLimits()) == 1024 and limits.cpu_shares(mine) == 512


def test_the_login_snippet_acts_only_for_its_user(tmp_path):
    """Another user's login shell reads it and stays where it is; it never fails a login."""
    snippet = tmp_path / "join.sh"
    snippet.write_text(limits.join_text("nobody-such-user", str(tmp_path)))
    (tmp_path / "cpu" / "workshop-nobody-such-user").mkdir(parents=True)
    procs = tmp_path / "cpu" / "workshop-nobody-such-user" / "cgroup.procs"
    procs.write_text("")
    done = subprocess.run(["sh", "-c", f". {snippet}; echo ok"], capture_output=True, text=True)
    assert done.stdout == "ok\n" and procs.read_text() == ""


def test_oom_score_of_this_process_is_read():
    """The doctor reads a process's oom_score_adj; a gone process reads as None."""
    assert isinstance(oom.score_adj("self"), int)
    assert oom.score_adj(2**22 + 12345) is None
