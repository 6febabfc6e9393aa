"""The settings of a provisioning run (`users create/delete/list/check`), the kit, the error.

The kit is what provisioning hands out besides the accounts: the participant starter, the
training data and its dictionary, and the shared init SQL. `kit_path` finds each in the
source checkout when the package runs from one (an editable install), else in the copy the
installed package carries (`game_server/_kit/`, package data built by setup.py), so one
`pip install` on the server is enough to provision.
"""

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from game_server.accounts import roster
from game_server.common import state_dir
from game_server.common.settings import DATABASE_URL, PSQL_ADMIN

PACKAGE = Path(__file__).resolve().parents[1]  # game_server/
REPO = PACKAGE.parent  # the source checkout, when the package runs from one
KIT = PACKAGE / "_kit"  # the installed copy (package data)
STARTER_DIR_NAME = "participant_starter"
TEAM_VENV = "/opt/workshop/venv"  # the teams' shared virtual environment (setup_server.sh)
PROFILE_DIR = "/etc/profile.d"


def kit_path(relative: str) -> Path:
    """A file or folder of the kit (`participant_starter`, `data/...`, `database_docker/...`).

    From the source checkout when the package runs from one, else from the package data.
    """
    checkout = (REPO / "pyproject.toml").is_file() and (REPO / STARTER_DIR_NAME).is_dir()
    return (REPO if checkout else KIT) / relative


@dataclass(frozen=True)
class TeamLimits:
    """Each team's fair share of the server (limits.py applies them; docs/INSTRUCTOR.md).

    Sized from the rehearsal's measurements (docs/PERFORMANCE.md): a team's API, Jupyter
    kernel and a training run of the starter together stay well under the memory ceiling;
    the process limit counts threads too (Jupyter, tmux, the API's, BLAS's).
    """

    enabled: bool = True
    cpu_weight: int = 100  # relative, as systemd's CPUWeight: every team the same share
    memory_max_mb: int = 2048  # past it the kernel kills inside the team only
    tasks_max: int = 512  # processes and threads


class AccountsError(RuntimeError):
    """Provisioning that cannot go on; one line (or one per bad roster row)."""


class Command(NamedTuple):
    """A command to run through the executor: its argv and what to feed its stdin."""

    argv: list[str]
    stdin: str


@dataclass
class Settings:
    """Everything `users create/delete/list/check` needs besides the executor and roster."""

    prefix: str = roster.DEFAULT_PREFIX
    registry: str = "/var/lib/game-server/accounts.json"
    handout_dir: str = field(default_factory=lambda: state_dir.default_path("handout"))
    api_ports: tuple[int, int] = (9000, 9499)  # also the debug ports (`flask --debug`)
    jupyter_ports: tuple[int, int] = (9500, 9999)
    psql_admin: list[str] = field(default_factory=lambda: shlex.split(PSQL_ADMIN.default))
    db_host: str = "127.0.0.1"
    db_port: int = 5432
    workshop_db: str = "workshop"
    game_db: str = "game"
    game_role: str = "game_server"
    game_url: str = "http://127.0.0.1:8000"
    game_cmd: list[str] | None = field(default_factory=lambda: ["game-server"])
    game_db_url: str | None = None  # passed on stdin (it may hold a password), not in argv
    starter_dir: str = str(kit_path(STARTER_DIR_NAME))
    starter_level: str = "complete"  # or "exercises" (levels.py), for the homes it creates
    train_data: str = str(kit_path("data/train_data.csv"))
    data_readme: str = str(kit_path("data/README.md"))  # the data dictionary
    init_sql: str = str(kit_path("database_docker/initdb/01-workshop.sql"))
    team_venv: str = TEAM_VENV  # first on each team's PATH in its login shells
    profile_dir: str = PROFILE_DIR  # where each team's login-shell snippet goes
    ssh_host: str = "127.0.0.1"  # where teams log in (for the handout and the check)
    ssh_port: int = 22
    known_hosts: str | None = None  # for the check's SSH logins
    rotate: bool = False
    team_timeout: float = 30.0  # seconds for each command run as a team (it may stop it)
    limits: TeamLimits = field(default_factory=TeamLimits)  # fair shares (limits.py)
    cgroup_root: str = "/sys/fs/cgroup"

    def psql(self, db: str) -> list[str]:
        """The admin psql command for database `db`."""
        return [*self.psql_admin, "-d", db]

    def game(self, *args: str) -> "Command":
        """argv and stdin of a `game-server` command on the server, with the game's database."""
        if not self.game_cmd:
            raise AccountsError("no game command (--no-game): cannot reach the game")
        if not self.game_db_url:
            return Command([*self.game_cmd, *args], "")
        var = DATABASE_URL.env
        script = f'IFS= read -r {var}; export {var}; exec "$@"'
        return Command(["sh", "-c", script, "sh", *self.game_cmd, *args], self.game_db_url + "\n")

    def team_psql(self, role: str, db: str) -> list[str]:
        """psql as a team role (password from the PGPASSWORD the wrapper reads on stdin)."""
        return [  # every value an option's argument: nothing is read as an option
            "psql",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            self.db_host,
            "-p",
            str(self.db_port),
            "-U",
            role,
            "-d",
            db,
        ]
