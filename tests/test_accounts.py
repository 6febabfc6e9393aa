"""Provisioning for real: Linux users, homes, roles, schemas, ports, the game, over SSH and locally.

The real sshd and the clean-up of every test team are in accounts_helpers.py.
"""

import subprocess
from pathlib import Path

import accounts_helpers
import psycopg
import pytest
from accounts_helpers import ADMIN, game_teams, passwd_lines, ssh_as, token_owner

from game_server.accounts import checks, config, handout, provision, registry, teardown
from game_server.accounts.executors import ExecError, LocalExecutor, SSHExecutor

pytestmark = [pytest.mark.root, pytest.mark.postgres]
sshd, setup = accounts_helpers.sshd, accounts_helpers.setup  # the fixtures


def snapshot(settings: config.Settings) -> tuple:
    """What a second run must not change: this test's users, passwords, registry and roles.

    Only the lines and roles with this test's prefix: other test runs on the same machine
    may add and remove their own users at the same time.
    """
    with psycopg.connect(ADMIN + "postgres") as conn:
        roles = conn.execute(
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname LIKE %s ORDER BY 1",
            (settings.prefix + "%",),
        ).fetchall()

    def ours(path: str) -> list[str]:
        return [
            line for line in Path(path).read_text().splitlines() if line.startswith(settings.prefix)
        ]

    return (ours("/etc/passwd"), ours("/etc/shadow"), Path(settings.registry).read_text(), roles)


def provision_and_remove(ex, settings, roster, sshd):
    """The whole life of two teams through executor `ex`, checked step by step."""
    port, known_hosts, _, team_key = sshd
    lines = []
    provision.create(ex, settings, roster, echo=lines.append)
    assert len(lines) == 6 and "create user" in lines[0] and "register in game" in lines[1]
    assert lines[2] == "the participant starter in new homes: level complete"
    assert lines[3].startswith(f"[1/2] {settings.prefix}") and lines[3].endswith("provisioning")
    assert lines[4].startswith(f"[2/2] {settings.prefix}") and lines[4].endswith(" left")
    assert checks.check(ex, settings, echo=lines.append), lines
    teams = handout.load(settings.handout_dir)
    assert set(teams) == {"Red Team", "Blue"}
    assert Path(settings.handout_dir, "handout.json").stat().st_mode & 0o777 == 0o600
    assert Path(settings.handout_dir, "handout.html").stat().st_mode & 0o777 == 0o600
    assert Path(settings.registry).stat().st_mode & 0o777 == 0o600
    red, blue = teams["Red Team"], teams["Blue"]
    for team in (red, blue):
        user, home = team["user"], Path("/home") / team["user"]
        assert ssh_as(port, known_hosts, user, team["password"]) == user
        assert home.stat().st_mode & 0o777 == 0o700
        env = (home / "participant_starter" / ".env").read_text()
        assert f"PORT={team['api_port']}\n" in env and f"TEAM_TOKEN={team['token']}\n" in env
        assert f"DATABASE_URL={team['database_url']}\n" in env
        assert f"DEBUG_PORT={team['debug_port']}\n" in env
        assert (home / "participant_starter" / ".env").stat().st_mode & 0o777 == 0o600
        assert (home / "participant_starter" / "data" / "train_data.csv").stat().st_size > 1000
        assert (
            "sudo" not in subprocess.run(["id", "-Gn", user], capture_output=True, text=True).stdout
        )
    assert (
        Path("/home") / blue["user"] / ".ssh" / "authorized_keys"
    ).read_text() == team_key + "\n"
    assert red["api_port"] != blue["api_port"] and red["jupyter_port"] != blue["jupyter_port"]
    assert game_teams(settings) == {"Red Team": True, "Blue": True}

    before, handout_before = snapshot(settings), handout.load(settings.handout_dir)
    assert len(before[0]) == len(before[1]) == len(before[3]) == 2  # both teams are in it
    lines.clear()
    provision.create(ex, settings, roster, echo=lines.append)
    assert lines[:2] == [
        f"{red['user']} (Red Team): unchanged",
        f"{blue['user']} (Blue): unchanged",
    ]
    assert snapshot(settings) == before and handout.load(settings.handout_dir) == handout_before

    Path(roster).write_text(Path(roster).read_text() + "Green,,\n")  # a new team: only it is added
    lines.clear()
    provision.create(ex, settings, roster, dry_run=True, echo=lines.append)
    assert lines[2].startswith("would: ") and lines[:2] == [
        f"{red['user']} (Red Team): unchanged",
        f"{blue['user']} (Blue): unchanged",
    ]
    assert snapshot(settings) == before  # a dry run changes nothing

    lines.clear()
    teardown.delete(ex, settings, None, echo=lines.append)
    assert registry.list_teams(ex, settings) == [] and game_teams(settings) == {
        "Red Team": False,
        "Blue": False,
    }
    passwd = Path("/etc/passwd").read_text()
    assert settings.prefix not in passwd
    assert not list(Path(settings.profile_dir).glob(f"workshop-{settings.prefix}*"))
    assert not list(Path("/home").glob(settings.prefix + "*"))
    with psycopg.connect(ADMIN + settings.workshop_db) as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM pg_roles WHERE rolname LIKE %s", (settings.prefix + "%",)
            ).fetchone()[0]
            == 0
        )
        assert (
            conn.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s", (settings.prefix + "%",)
            ).fetchone()[0]
            == 0
        )
    assert handout.load(settings.handout_dir) == {}


@pytest.mark.ssh
@pytest.mark.slow
def test_provisioning_over_ssh(setup, sshd):
    settings, roster = setup
    port, known_hosts, client_key, _ = sshd
    with SSHExecutor("127.0.0.1", "root", port, key_path=client_key, known_hosts=known_hosts) as ex:
        provision_and_remove(ex, settings, roster, sshd)


def recreate_and_rotate(ex, settings, roster):
    """A deleted team created again is enabled with a new token; --rotate renews tokens."""
    Path(roster).write_text("name,members,ssh_key\nRed Team,Ann,\n")
    lines = []
    provision.create(ex, settings, roster, echo=lines.append)
    assert "enable in game" in lines[0] and "new game token" in lines[0], lines
    assert game_teams(settings)["Red Team"] is True
    red = handout.load(settings.handout_dir)["Red Team"]
    env = (Path("/home") / red["user"] / "participant_starter" / ".env").read_text()
    assert (
        f"TEAM_TOKEN={red['token']}\n" in env and token_owner(settings, red["token"]) == "Red Team"
    )
    lines.clear()
    provision.create(ex, settings, roster, echo=lines.append)
    assert lines[0].endswith("(Red Team): unchanged")  # idempotent again
    settings.rotate = True
    provision.create(ex, settings, roster, echo=lines.append)
    rotated = handout.load(settings.handout_dir)["Red Team"]
    assert rotated["token"] != red["token"] and rotated["password"] != red["password"]
    assert token_owner(settings, red["token"]) is None
    assert token_owner(settings, rotated["token"]) == "Red Team"
    env = (Path("/home") / red["user"] / "participant_starter" / ".env").read_text()
    assert f"TEAM_TOKEN={rotated['token']}\n" in env


@pytest.mark.ssh
@pytest.mark.slow
def test_provisioning_locally(setup, sshd):
    settings, roster = setup
    provision_and_remove(LocalExecutor(), settings, roster, sshd)
    recreate_and_rotate(LocalExecutor(), settings, roster)


@pytest.mark.ssh
def test_unknown_or_changed_host_key_is_refused(tmp_path, sshd):
    port, _, client_key, _ = sshd
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(ExecError, match="is not in .*refusing an unknown host key"):
        SSHExecutor("127.0.0.1", "root", port, key_path=client_key, known_hosts=str(empty))
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, key = (tmp_path / "other.pub").read_text().split()[:2]
    empty.write_text(f"[127.0.0.1]:{port} {kind} {key}\n")
    with pytest.raises(ExecError, match="does not match"):
        SSHExecutor("127.0.0.1", "root", port, key_path=client_key, known_hosts=str(empty))
    fresh = tmp_path / "fresh_known_hosts"  # explicit opt-in: accepted and recorded
    with SSHExecutor(
        "127.0.0.1",
        "root",
        port,
        key_path=client_key,
        known_hosts=str(fresh),
        accept_new_host_key=True,
    ) as ex:
        assert ex.run(["id", "-un"])[1].strip() == "root"
        rc, _, err = ex.run(["sh", "-c", "echo oops >&2; exit 7"], check=False)
        assert (rc, err.strip()) == (7, "oops")
        with pytest.raises(ExecError, match=r"exit 7\): oops"):
            ex.run(["sh", "-c", "echo oops >&2; exit 7"])
        assert ex.run(["printf", "%s", "a b; $(x)"])[1] == "a b; $(x)"  # quoted, not a shell
    assert f"[127.0.0.1]:{port}" in fresh.read_text()


def test_bad_roster_changes_nothing(setup):
    settings, roster = setup
    Path(roster).write_text("name\nRed\nred\nroot/x\n" + "y" * 40 + "\n")
    before = passwd_lines(settings.prefix)
    with pytest.raises(config.AccountsError) as err:
        provision.create(LocalExecutor(), settings, roster)
    assert len(str(err.value).splitlines()) == 3
    assert passwd_lines(settings.prefix) == before
    assert not Path(settings.registry).exists()
    assert not Path(settings.handout_dir).exists()
    with psycopg.connect(ADMIN + "postgres") as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM pg_database WHERE datname = %s", (settings.workshop_db,)
            ).fetchone()[0]
            == 0
        )


def test_delete_refuses_users_not_in_the_registry(setup):
    settings, _ = setup
    with pytest.raises(config.AccountsError, match="not in the provisioning registry"):
        teardown.delete(LocalExecutor(), settings, ["root"])
    assert Path("/etc/passwd").read_text().startswith("root:")


def test_cli_reports_every_bad_row_and_refuses_both_names_and_all(tmp_path):
    from click.testing import CliRunner

    from game_server.cli.main import main

    roster = tmp_path / "roster.csv"
    roster.write_text("name\nRed\nRED\nx/y\n")
    args = [
        "--registry",
        str(tmp_path / "reg.json"),
        "--handout-dir",
        str(tmp_path / "h"),
        "--prefix",
        "gstcli-",
        "--no-game",
    ]
    result = CliRunner().invoke(main, ["users", "create", str(roster), *args])
    assert result.exit_code == 1
    assert f"{roster}:3: duplicate team name 'RED'" in result.output
    assert f"{roster}:4: bad team name 'x/y'" in result.output
    assert not (tmp_path / "reg.json").exists() and not (tmp_path / "h").exists()
    result = CliRunner().invoke(main, ["users", "delete", "--all", "Red", *args])
    assert result.exit_code == 2 and "give team names or --all" in result.output
