"""What a team finds in its home: the participant starter, and its `.env` with the settings.

The starter is made at the workshop's level (`users create --starter complete|exercises`)
from its one source by `levels.py`.

The `.env` (mode 0600, written as the team user) holds the team's ports, its DATABASE_URL
(with the database password), the game's URL and the team token.
"""

import io
import tarfile
import time
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from game_server.accounts import levels
from game_server.accounts.config import STARTER_DIR_NAME, AccountsError, Settings
from game_server.accounts.executors import Executor
from game_server.accounts.files import read_file
from game_server.accounts.plan import TeamPlan

SKIP_NAMES = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".ruff_cache", ".venv", ".env"}
SKIP_SUFFIXES = (".pyc", ".sqlite", ".sqlite3", ".db", ".pkl", ".joblib")


def wanted(rel: str) -> bool:
    """Whether a file of the starter (a path relative to it) goes into a team's home.

    Not caches, trained models, `.env`, databases, nor a copy of the training data (the
    kit's own is added).
    """
    parts = Path(rel).parts
    name = parts[-1]
    if set(parts) & SKIP_NAMES or name.endswith(SKIP_SUFFIXES):
        return False
    if parts[0] == "models" and name != "README.md":
        return False  # trained models are the team's to make
    return not (parts[0] == "data" and name.endswith(".csv"))


def starter_tarball(settings: Settings) -> bytes:
    """The participant starter at the workshop's level (levels.py) as a tar.gz, + train data.

    Owned by nobody (the team user unpacks it), each file with its source's mode.
    """
    base = Path(settings.starter_dir)
    if not base.is_dir():
        raise AccountsError(f"no participant starter at {base}")
    try:
        contents = levels.tree(base, settings.starter_level, keep=wanted)
    except levels.LevelError as exc:
        raise AccountsError(f"the participant starter: {exc}") from exc
    modes = {rel: (base / rel).stat().st_mode & 0o777 for rel in contents}
    data = Path(settings.train_data)
    if data.is_file():
        contents["data/train_data.csv"], modes["data/train_data.csv"] = data.read_bytes(), 0o644
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        folders: set[str] = set()
        for rel, content in sorted(contents.items()):
            for folder in reversed(Path(rel).parents):  # ".", then each folder on the way
                if folder.as_posix() not in folders:
                    folders.add(folder.as_posix())
                    tar.addfile(_entry(folder.as_posix(), tarfile.DIRTYPE, 0o755))
            info = _entry(rel, tarfile.REGTYPE, modes[rel], len(content))
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _entry(rel: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    """A tar entry under the starter's folder, owned by nobody."""
    info = tarfile.TarInfo(f"{STARTER_DIR_NAME}/{rel}" if rel != "." else STARTER_DIR_NAME)
    info.type, info.mode, info.size = kind, mode, size
    info.mtime = int(time.time())
    return info


def database_url(settings: Settings, role: str, password: str | None) -> str:
    """The team's DATABASE_URL (SQLAlchemy + psycopg)."""
    url = URL.create(
        "postgresql+psycopg",
        username=role,
        password=password or "PASSWORD",
        host=settings.db_host,
        port=settings.db_port,
        database=settings.workshop_db,
    )
    return url.render_as_string(hide_password=False)


def url_password(url: str) -> str | None:
    """The password in a database URL (None when it has none or is not a URL)."""
    try:
        return make_url(url).password or None
    except ArgumentError:
        return None


def env_text(settings: Settings, plan: TeamPlan) -> str:
    """The team's .env."""
    r, s = plan.record, plan.secrets
    return (
        "# Written by `game-server users create`: your team's settings. Keep it private.\n"
        f"PORT={r['api_port']}\nJUPYTER_PORT={r['jupyter_port']}\n"
        f"DATABASE_URL={database_url(settings, r['role'], s.db_password)}\n"
        f"GAME_URL={settings.game_url}\nTEAM_TOKEN={s.token or ''}\n"
    )


def read_env(ex: Executor, path: str) -> dict[str, str]:
    """KEY=VALUE pairs of an existing .env on the server ({} if none)."""
    text = read_file(ex, path) or ""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.startswith("#")}
