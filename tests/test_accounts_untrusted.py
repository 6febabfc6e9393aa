"""Root never trusts a path a team controls, and every command's output is bounded.

A team owns its home: it can replace its `.env`, its `authorized_keys` or its starter
folder with a link to another team's file, to /dev/zero, with a FIFO or a folder. Each is
planted here, and provisioning (`--dry-run` and for real) must not leak the other team's
secrets, must not hang (a pytest timeout bounds every test) and must say in one line which
file it refused.
"""

import os
import pwd
import subprocess
import time
from pathlib import Path

import accounts_helpers
import pytest
from accounts_helpers import as_user

from game_server.accounts import handout, provision
from game_server.accounts.config import AccountsError
from game_server.accounts.executors import ExecError, LocalExecutor, SSHExecutor
from game_server.accounts.files import RefusedFile, as_team, read_team_file

pytestmark = [pytest.mark.root, pytest.mark.postgres, pytest.mark.timeout(180)]
sshd, setup = accounts_helpers.sshd, accounts_helpers.setup  # the fixtures
ENV = "participant_starter/.env"
KEYS = ".ssh/authorized_keys"


@pytest.fixture
def two_teams(setup):
    """Red and Blue provisioned (both with the roster's SSH key), and their handout."""
    settings, roster = setup
    key = Path(roster).read_text().splitlines()[2].split(",", 2)[2]
    Path(roster).write_text(f"name,members,ssh_key\nRed,Ann,{key}\nBlue,Cy,{key}\n")
    provision.create(LocalExecutor(), settings, roster, echo=lambda line: None)
    teams = handout.load(settings.handout_dir)
    return settings, roster, teams["Red"], teams["Blue"]


def secrets_of(team: dict) -> list[str]:
    """The team's secrets, as they would show in another team's .env or handout."""
    return [team["token"], team["db_password"], team["password"]]


PLANTS = {
    "link to the other team's .env": ('ln -s "$2" "$1"', "a symbolic link"),
    "link to /dev/zero": ('ln -s /dev/zero "$1"', "a symbolic link"),
    "FIFO": ('mkfifo "$1"', "a fifo, not a regular file"),
    "folder": ('mkdir "$1"', "a directory, not a regular file"),
}


@pytest.mark.slow  # two teams provisioned for real (10-20 s)
def test_a_planted_env_leaks_nothing_and_is_refused_in_one_line(two_teams):
    settings, roster, red, blue = two_teams
    for plant in PLANTS:  # the folder last: Red is left unfinished by it
        plant_env_and_recreate(settings, roster, red, blue, plant)


def plant_env_and_recreate(settings, roster, red: dict, blue: dict, plant: str) -> None:
    """Red's .env replaced by `plant`, its keys emptied, the handout lost; then create."""
    red_home, blue_home = f"/home/{red['user']}", f"/home/{blue['user']}"
    red_env = f"{red_home}/{ENV}"
    script, reason = PLANTS[plant]
    assert (
        as_user(red["user"], f'rm -f "$1"; {script}', red_env, f"{blue_home}/{ENV}").returncode == 0
    )
    assert as_user(red["user"], ': > "$1"', f"{red_home}/{KEYS}").returncode == 0  # empty it
    Path(settings.handout_dir, "handout.json").unlink()  # the instructor lost the handout

    lines: list[str] = []
    provision.create(LocalExecutor(), settings, roster, dry_run=True, echo=lines.append)
    refusals = [line for line in lines if f"refusing to read {red_env}: {reason}" in line]
    assert len(refusals) == 1 and refusals[0].startswith(f"would: {red['user']} (Red)"), plant

    lines.clear()
    if plant == "folder":  # a folder is never written into: Red fails, Blue goes on
        with pytest.raises(AccountsError, match=r"1 team\(s\) not finished: Red"):
            provision.create(LocalExecutor(), settings, roster, echo=lines.append)
        assert any(line.startswith(f"{red['user']} (Red): failed at write .env") for line in lines)
        assert Path(red_env).is_dir() and not os.listdir(red_env)
    else:
        provision.create(LocalExecutor(), settings, roster, echo=lines.append)
        env = Path(red_env)
        assert env.is_file() and not env.is_symlink() and env.stat().st_uid != 0, plant
        assert not any(s in env.read_text() for s in secrets_of(blue)), plant
    new_red = handout.load(settings.handout_dir).get("Red", {})  # none when Red failed
    assert not any(s in str(new_red) for s in secrets_of(blue)), plant
    assert Path(f"{blue_home}/{ENV}").read_text().count(blue["token"]) == 1  # Blue's untouched


@pytest.mark.slow  # two teams provisioned for real (10-20 s)
def test_a_planted_authorized_keys_or_starter_folder_leaks_nothing(two_teams):
    settings, roster, red, blue = two_teams
    red_home, blue_home = f"/home/{red['user']}", f"/home/{blue['user']}"
    blue_keys = Path(blue_home, KEYS).read_text()
    as_user(red["user"], 'rm -f "$1"; ln -s "$2" "$1"', f"{red_home}/{KEYS}", f"{blue_home}/{KEYS}")
    lines: list[str] = []
    provision.create(LocalExecutor(), settings, roster, dry_run=True, echo=lines.append)
    refusal = f"refusing to read {red_home}/{KEYS}: a symbolic link"
    assert [line for line in lines if refusal in line][0].startswith("would: "), lines
    provision.create(LocalExecutor(), settings, roster, echo=lines.append)
    assert not Path(red_home, KEYS).is_symlink() and Path(blue_home, KEYS).read_text() == blue_keys

    # The whole starter folder a link to Blue's: seen as Red, it is not Red's folder.
    starter = f"{red_home}/participant_starter"
    as_user(
        red["user"], 'rm -rf "$1"; ln -s "$2" "$1"', starter, f"{blue_home}/participant_starter"
    )
    Path(settings.handout_dir, "handout.json").unlink()
    provision.create(LocalExecutor(), settings, roster, echo=lines.append)
    assert Path(starter).is_dir() and not Path(starter).is_symlink()
    assert not any(s in Path(starter, ".env").read_text() for s in secrets_of(blue))
    assert Path(f"{blue_home}/{ENV}").read_text().count(blue["token"]) == 1


@pytest.mark.slow  # two teams provisioned for real (10-20 s)
def test_reading_a_teams_file_refuses_all_but_its_own_small_regular_file(two_teams):
    settings, _, red, _ = two_teams
    user, home, ex = red["user"], f"/home/{red['user']}", LocalExecutor()
    assert "TEAM_TOKEN=" in (read_team_file(ex, user, home, ENV) or "")
    assert read_team_file(ex, user, home, "no/such/file") is None
    cases = {
        'ln -s /dev/zero "$1"': "a symbolic link",
        'mkfifo "$1"': "a fifo, not a regular file",
        'head -c 70000 /dev/zero > "$1"': "larger than 65536 bytes",
    }
    for script, reason in cases.items():
        as_user(user, f'rm -rf "$1"; {script}', f"{home}/probe")
        with pytest.raises(RefusedFile) as err:
            read_team_file(ex, user, home, "probe")
        assert str(err.value) == f"refusing to read {home}/probe: {reason}"
    Path(home, "probe").unlink()
    Path(home, "probe").write_text("root's\n")  # in the team's home, but not the team's
    with pytest.raises(RefusedFile, match=f"^refusing to read {home}/probe: owned by uid 0"):
        read_team_file(ex, user, home, "probe")
    as_user(user, 'mkdir -p "$1/d" && echo x > "$1/d/f" && ln -s "$1/d" "$1/l"', home)
    with pytest.raises(RefusedFile, match=r"^refusing to read .*/l/f: l is a symbolic link$"):
        read_team_file(ex, user, home, "l/f")


@pytest.mark.ssh
def test_every_commands_output_is_bounded_locally_and_over_ssh(sshd):
    port, known_hosts, client_key, _ = sshd
    local = LocalExecutor(limit=1 << 20)
    with pytest.raises(ExecError, match=r"^cat /dev/zero printed more than 1048576 bytes"):
        local.run(["cat", "/dev/zero"])
    with pytest.raises(ExecError, match="printed more than"):
        local.run(["sh", "-c", "cat /dev/zero >&2"])
    assert local.run(["head", "-c", "1000", "/dev/zero"])[1] == "\0" * 1000
    with pytest.raises(ExecError, match=r"^sleep 30 timed out after 1 s$"):
        local.run(["sleep", "30"], timeout=1)
    with SSHExecutor(
        "127.0.0.1", "root", port, key_path=client_key, known_hosts=known_hosts, limit=1 << 20
    ) as ex:
        with pytest.raises(ExecError, match=r"^cat /dev/zero printed more than 1048576 bytes"):
            ex.run(["cat", "/dev/zero"])
        assert ex.run(["echo", "still connected"])[1] == "still connected\n"
    for _ in range(100):  # the command on the server stops too (its channel is closed)
        if subprocess.run(["pgrep", "-x", "-f", "cat /dev/zero"]).returncode == 1:
            break
        time.sleep(0.1)
    assert subprocess.run(["pgrep", "-x", "-f", "cat /dev/zero"]).returncode == 1


# Run as a team: every new process of the team's uid is recorded (its command line and
# environment, one repr per line on stdout); with "stop" it is first stopped (SIGSTOP).
WATCHER = r"""
import os, signal, sys
uid, stop = os.getuid(), sys.argv[1] == "stop"
def real_uid(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("Uid:"))
seen = {int(p) for p in os.listdir("/proc") if p.isdigit()}
print("ready", flush=True)
while True:
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) in seen:
            continue
        try:
            if real_uid(p) != uid:  # not yet: `env` and `setpriv` become the team on exec
                continue
            if stop:
                os.kill(int(p), signal.SIGSTOP)
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read()
            try:
                with open(f"/proc/{p}/environ", "rb") as g:
                    env = g.read()
            except PermissionError:  # between setpriv's change of uid and its exec
                if not stop:
                    continue  # readable once it has exec'd: look again
                env = b""  # stopped there: it is the team's, its environment unread
            if not stop and not (cmd and env):  # mid-exec, or exiting: look again
                continue
        except (OSError, StopIteration):  # gone, or its uid changing
            continue
        seen.add(int(p))
        print(repr((cmd.split(b"\0"), env.split(b"\0"))), flush=True)
"""


def start_watcher(user: str, mode: str) -> subprocess.Popen:
    """The team `user` watching its own new processes (WATCHER), started with no environment."""
    argv = [
        "setpriv",
        f"--reuid={user}",
        f"--regid={user}",
        "--init-groups",
        "/usr/bin/python3",
        "-c",
        WATCHER,
        mode,
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env={}, cwd="/")
    assert proc.stdout and proc.stdout.readline() == b"ready\n"
    return proc


def stop_watcher(proc: subprocess.Popen) -> list[tuple[list[bytes], list[bytes]]]:
    """Stop the watcher; what it saw."""
    proc.kill()
    out, _ = proc.communicate()
    return [eval(line) for line in out.decode().splitlines()]  # noqa: S307 (our own reprs)


def test_no_process_run_as_a_team_sees_roots_environment(two_teams, monkeypatch):
    settings, roster, red, _ = two_teams
    watcher = start_watcher(red["user"], "peek")
    sentinel = "root-secret-" + os.urandom(8).hex()
    for name in ("GAME_ADMIN_TOKEN", "GAME_DATABASE_URL"):  # as the guide's cheat sheet does
        monkeypatch.setenv(name, f"{name}-{sentinel}")
    settings.rotate = True  # every team file written again, as the team
    try:
        provision.create(LocalExecutor(), settings, roster, echo=lambda line: None)
        # Provisioning's commands are over in milliseconds: a watcher on a busy machine may
        # miss them all. One that lasts, run the same way (files.as_team), it cannot miss.
        home = pwd.getpwnam(red["user"]).pw_dir
        LocalExecutor().run(as_team(red["user"], home, ["sleep", "1.5"]))
    finally:
        seen = stop_watcher(watcher)
    ran = [cmd for cmd, env in seen if any(env)]  # (an exiting process shows nothing)
    assert [b"sleep", b"1.5", b""] in ran, seen  # the environment of a team's command, read
    given = {b"PATH", b"HOME", b"LANG", b"USER", b"LOGNAME"}  # and what a script sets itself
    for cmd, env in seen:
        assert not any(sentinel.encode() in var for var in env), cmd
        names = {var.partition(b"=")[0] for var in env if var}
        assert names <= given | {b"PWD", b"LC_ALL"}, (cmd, env)
        assert b"PWD=/" in env or b"PWD" not in names, (cmd, env)


def test_a_team_that_stops_its_commands_fails_alone_within_its_time_limit(two_teams):
    settings, roster, red, blue = two_teams
    watcher = start_watcher(red["user"], "stop")
    settings.rotate, settings.team_timeout = True, 3  # new secrets for both teams
    lines: list[str] = []
    try:
        with pytest.raises(AccountsError, match=r"^1 team\(s\) not finished: Red "):
            provision.create(LocalExecutor(), settings, roster, echo=lines.append)
    finally:
        seen = stop_watcher(watcher)
    assert seen  # it did stop Red's commands
    red_lines = [line for line in lines if line.startswith(f"{red['user']} (Red): failed at ")]
    assert len(red_lines) == 1 and red_lines[0].endswith("timed out after 3 s"), lines
    assert "\n" not in red_lines[0]
    new_blue = handout.load(settings.handout_dir)["Blue"]
    assert new_blue["token"] != blue["token"]  # Blue was provisioned: its new token
    assert Path(f"/home/{blue['user']}/{ENV}").read_text().count(new_blue["token"]) == 1
