"""`game-server rehearse` end to end: bot teams live the README's day over a real sshd while a
compressed whole game runs; one verdict; nothing of the rehearsal left (Ctrl-C included).

The teams' Python is the shared venv `scripts/setup_server.sh` builds (/opt/workshop/venv),
as on a workshop server; the sshd is the tests' own (tests/sshd_server.py).
"""

import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from accounts_helpers import ADMIN, PSQL_ADMIN
from sshd_server import sshd

from game_server.accounts import config
from game_server.rehearsal.run import Options, rehearse

pytestmark = [pytest.mark.root, pytest.mark.ssh, pytest.mark.slow, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[1]
TEAM_VENV = config.TEAM_VENV
# The Ctrl-C test's rehearsal, in a process of its own (Ctrl-C reaches its main thread).
CHILD = """
import sys
from game_server.accounts import config
from game_server.rehearsal.run import Options, rehearse
port, hosts, ws, game, role = sys.argv[1:]
settings = config.Settings(psql_admin={psql!r}, workshop_db=ws, game_db=game, game_role=role)
sys.exit(0 if rehearse(Options(1, "complete", 2.0, int(port), hosts, settings, print)).ok else 1)
"""


@pytest.fixture(scope="module")
def server():
    """The teams' venv as setup_server.sh builds it; scratch databases and roles, dropped after.

    Only the venv of setup_server.sh (its own `make_venv`): the packages, the game's venv and
    the shared databases are the end-to-end test's to check, and stay as they are.
    """
    script = REPO / "scripts" / "setup_server.sh"
    requirements = REPO / "participant_starter" / "requirements.txt"
    build = f". {script}; make_venv {TEAM_VENV} sklearn -r {requirements} jupyter"
    done = subprocess.run(["bash", "-c", build], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tag = uuid.uuid4().hex[:6]
    settings = config.Settings(
        psql_admin=PSQL_ADMIN,
        workshop_db=f"gs_test_ws_{tag}",
        game_db=f"gs_test_game_{tag}",
        game_role=f"gs_test_gr_{tag}",
    )
    try:
        yield settings
    finally:
        with psycopg.connect(ADMIN + "postgres", autocommit=True) as conn:
            for db in (settings.workshop_db, settings.game_db):
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{settings.game_role}"')


def no_rehearsal_user() -> None:
    """No user with a rehearsal's prefix (`rhXXXX-`) is left."""
    assert not re.search(r"^rh[0-9a-f]{4}-", Path("/etc/passwd").read_text(), re.M)


@pytest.mark.timeout(1500)
def test_a_rehearsal_with_one_team_holds_the_peak_and_leaves_nothing(server, tmp_path):
    """One bot team: trained, API up, self-check, retrains; every phase measured; cleaned."""
    lines: list[str] = []
    with sshd(tmp_path) as ssh:
        opts = Options(1, "complete", 2.0, ssh.port, ssh.known_hosts, server, lines.append)
        ok = rehearse(opts).ok
    text = "\n".join(lines)
    assert "rehearse: provisioned 1 of 1" in text
    assert "rehearse: trained, API up, self-check: 1 of 1 done" in text
    assert "teams retrain" in text and "bot:" not in text, text
    # each phase the team retrains in ends once it has (the shift's, the drift's)
    assert text.count("every team retrained, the game goes on") == 2, text
    for phase in ("warm-up", "messy input", "population shift", "peak traffic", "the world c"):
        row = next(line for line in lines if line.startswith(f"  {phase}"))
        answered, failed = (int(x) for x in row[22:].split()[:2])
        assert answered > 0, row
        if phase in ("warm-up", "messy input", "peak traffic"):  # no restart of the API in them
            assert failed <= answered * 0.01, row  # (the shift and the drift: the README's
            # retraining restarts the API, seconds of connection errors the team causes)
    assert "HELD the peak" in text and "would hold about" in text and "estimate" in text
    assert "cleaned up: no rehearsal account, home, role or file is left" in text
    assert ok, text
    no_rehearsal_user()


@pytest.mark.timeout(900)
def test_ctrl_c_cleans_up(server, tmp_path):
    """Ctrl-C after the teams are provisioned: every rehearsal account goes, nothing left."""
    with sshd(tmp_path) as ssh:
        child = CHILD.format(psql=PSQL_ADMIN)
        args = [
            str(ssh.port),
            ssh.known_hosts,
            server.workshop_db,
            server.game_db,
            server.game_role,
        ]
        command = [sys.executable, "-u", "-c", child, *args]
        run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen = []
        assert run.stdout is not None
        for line in run.stdout:
            seen.append(line)
            if "provisioned 1 of 1" in line:
                time.sleep(3)  # the bot is logging in and training
                run.send_signal(signal.SIGINT)
                break
        out, _ = run.communicate(timeout=300)
    text = "".join(seen) + out
    assert "interrupted: cleaning up" in text, text
    assert "cleaned up: no rehearsal account, home, role or file is left" in text, text
    assert run.returncode != 0
    no_rehearsal_user()
