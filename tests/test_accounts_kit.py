"""One install on the server does everything: the wheel carries the kit `users create` hands out.

The kit (the participant starter, the training data and its dictionary, the init SQL) is
package data under game_server/_kit/ (setup.py); accounts.config.kit_path finds it in the
source checkout first, else in the installed package. Here a wheel is built from a copy of
this checkout (with a used starter's leftovers planted in it), its file list is checked,
and it is installed without `-e` into a fresh virtual environment whose `game-server users
create --dry-run` finds the kit inside that environment.
"""

import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from accounts_helpers import PSQL_ADMIN

from game_server.accounts import config

REPO = Path(__file__).resolve().parents[1]
PARTS = [
    "pyproject.toml",
    "setup.py",
    "README.md",
    "game_server",
    "participant_starter",
    "data",
    "database_docker",
]
KIT = "game_server/_kit/"
WANTED = [
    "participant_starter/main.py",
    "participant_starter/selfcheck.py",
    "participant_starter/README.md",
    "participant_starter/requirements.txt",
    "participant_starter/.env.example",
    "participant_starter/modules/features.py",
    "participant_starter/notebooks/1.0-train-model.ipynb",
    "participant_starter/models/README.md",
    "data/train_data.csv",
    "data/README.md",
    "database_docker/initdb/01-workshop.sql",
]
LEFTOVERS = [
    "participant_starter/.env",
    "participant_starter/models/model.pkl",
    "participant_starter/output/predictions.sqlite",
    "participant_starter/__pycache__/main.cpython-311.pyc",
    "participant_starter/data/train_data.csv",
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built (not editable) from a copy of this checkout with leftovers planted."""
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for part in PARTS:
        if (REPO / part).is_dir():
            shutil.copytree(REPO / part, src / part, ignore=ignore)
        else:
            shutil.copy(REPO / part, src / part)
    for leftover in LEFTOVERS:
        (src / leftover).parent.mkdir(parents=True, exist_ok=True)
        (src / leftover).write_text("left over from a trial run\n")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
    )
    (whl,) = out.glob("game_server-*.whl")
    return whl


@pytest.mark.slow
def test_the_wheel_carries_the_kit_and_no_leftovers(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {KIT + path for path in WANTED} <= names
    assert not {KIT + path for path in LEFTOVERS} & names
    assert "game_server/templates/leaderboard.html" in names  # the game's own data too
    csv = zipfile.ZipFile(wheel).read(KIT + "data/train_data.csv")
    assert csv == (REPO / "data" / "train_data.csv").read_bytes()


def test_the_kit_is_found_in_the_checkout_first():
    assert config.kit_path("participant_starter") == REPO / "participant_starter"
    assert config.Settings().init_sql == str(REPO / "database_docker/initdb/01-workshop.sql")


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.postgres
def test_an_installed_wheel_finds_its_kit(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    site = Path(
        subprocess.run(
            [
                venv / "bin" / "python",
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # The dependencies from this environment, after the installed package (a plain path).
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    kit = site / "game_server" / "_kit"

    show = (
        "from game_server.accounts import config, starter; s = config.Settings(); "
        "print(starter.missing_kit(s), s.starter_dir); import sys; "
        "sys.stdout.buffer.write(starter.starter_tarball(s))"
    )
    out = subprocess.run(
        [venv / "bin" / "python", "-c", show], capture_output=True, check=True, cwd=tmp_path
    ).stdout
    head, _, tarball = out.partition(b"\n")
    assert head.decode() == f"[] {kit / 'participant_starter'}"
    with tarfile.open(fileobj=BytesIO(tarball)) as tar:
        names = tar.getnames()
        dictionary = tar.extractfile("participant_starter/data/README.md")
        assert dictionary and b"## Data dictionary" in dictionary.read()
    for path in ("main.py", "selfcheck.py", "data/train_data.csv", "data/README.md"):
        assert f"participant_starter/{path}" in names

    roster = tmp_path / "roster.csv"
    roster.write_text("name,members,ssh_key\nRed,Ann,\n")
    args = [
        "users",
        "create",
        str(roster),
        "--dry-run",
        "--no-game",
        "--prefix",
        "gstkit-",
        "--registry",
        str(tmp_path / "reg.json"),
        "--handout-dir",
        str(tmp_path / "h"),
        "--psql-admin",
        " ".join(PSQL_ADMIN),
    ]
    result = subprocess.run(
        [venv / "bin" / "game-server", *args], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert f"kit: the starter from {kit / 'participant_starter'}, the init SQL " in result.stdout
    assert "would: gstkit-red (Red): assign ports" in result.stdout
    assert not (tmp_path / "reg.json").exists()
