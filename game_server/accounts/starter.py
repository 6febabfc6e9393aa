"""What a team finds in its home: the participant starter, and its `.env` with the settings.

The `.env` (mode 0600, written as the team user) holds the team's ports (`PORT` for its
API, `JUPYTER_PORT`, `DEBUG_PORT` for `flask --debug`), its `DATABASE_URL` (with the
database password), the game's URL, the team token and the team's name: `ENV_KEYS`, the
keys its login shell exports too (login_shell.py). The starter comes from the kit
(config.kit_path), with the training data and the data dictionary in its `data/` folder,
at the workshop's level (`users create --starter complete|exercises`, levels.py).
"""

import io
import re
import tarfile
import time
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from game_server.accounts import levels
from game_server.accounts.config import STARTER_DIR_NAME, AccountsError, Settings
from game_server.accounts.registry import Record

SKIP_NAMES = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".ruff_cache", ".venv", ".env"}
SKIP_SUFFIXES = (".pyc", ".sqlite", ".sqlite3", ".db", ".pkl", ".joblib")
# The keys of a team's .env, in order: the same keys its login shell exports.
ENV_KEYS = (
    "PORT",
    "JUPYTER_PORT",
    "DEBUG_PORT",
    "DATABASE_URL",
    "GAME_URL",
    "TEAM_TOKEN",
    "TEAM_NAME",
)


def wanted(rel: str) -> bool:
    """Whether a file of the starter (a path relative to it) goes into a team's home.

    Not caches, trained models, `.env` or databases; nor the files of `data/`, which gets
    the kit's training data and dictionary (`starter_tarball`).
    """
    parts = Path(rel).parts
    name = parts[-1]
    if set(parts) & SKIP_NAMES or name.endswith(SKIP_SUFFIXES):
        return False
    if parts[0] == "models" and name != "README.md":
        return False  # trained models are the team's to make
    return not (len(parts) == 2 and parts[0] == "data")


def missing_kit(settings: Settings) -> list[str]:
    """The kit's parts that are not there (the starter, the data, its dictionary, init SQL)."""
    wanted = [
        ("participant starter", settings.starter_dir, Path.is_dir),
        ("training data", settings.train_data, Path.is_file),
        ("data dictionary", settings.data_readme, Path.is_file),
        ("init SQL", settings.init_sql, Path.is_file),
    ]
    return [f"no {what} at {path}" for what, path, ok in wanted if not ok(Path(path))]


def check_kit(settings: Settings) -> None:
    """Raise AccountsError (one line) when a part of the kit is missing."""
    missing = missing_kit(settings)
    if missing:
        raise AccountsError(
            "; ".join(missing) + " (a checkout or an install of the game-server package has them)"
        )


def starter_tarball(settings: Settings) -> bytes:
    """The participant starter at the workshop's level as a tar.gz (no caches, models, .env,
    databases), owned by nobody, each file with its source's mode.

    `data/` holds the training data and its dictionary (`data/README.md`, at the level too).
    """
    check_kit(settings)
    base, level = Path(settings.starter_dir), settings.starter_level
    try:
        contents = levels.tree(base, level, keep=wanted)
        readme = levels.render("README.md", Path(settings.data_readme).read_text(), level)
    except levels.LevelError as exc:
        raise AccountsError(f"the participant starter: {exc}") from exc
    modes = {rel: (base / rel).stat().st_mode & 0o777 for rel in contents}
    contents["data/train_data.csv"] = Path(settings.train_data).read_bytes()
    contents["data/README.md"] = readme.encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        folders: set[str] = set()
        for rel, content in sorted(contents.items()):
            for folder in reversed(Path(rel).parents):  # ".", then each folder on the way
                if folder.as_posix() not in folders:
                    folders.add(folder.as_posix())
                    tar.addfile(_entry(folder.as_posix(), tarfile.DIRTYPE, 0o755))
            info = _entry(rel, tarfile.REGTYPE, modes.get(rel, 0o644), len(content))
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


def url_password(url: str | None) -> str | None:
    """The password in a database URL (None when it has none or is not a URL)."""
    if not url:
        return None
    try:
        return make_url(url).password or None
    except ArgumentError:
        return None


def quoted(value: str) -> str:
    """`value` in double quotes for a .env (python-dotenv's escapes: backslash, quote)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def env_text(
    settings: Settings,
    name: str,
    record: Record,
    token: str | None,
    db_password: str | None,
) -> str:
    """The team's .env: ENV_KEYS, one a line."""
    values = {
        "PORT": record.api_port,
        "JUPYTER_PORT": record.jupyter_port,
        "DEBUG_PORT": record.debug_port,
        "DATABASE_URL": database_url(settings, record.role, db_password),
        "GAME_URL": settings.game_url,
        "TEAM_TOKEN": token or "",
        "TEAM_NAME": quoted(name),
    }
    lines = [f"{key}={values[key]}" for key in ENV_KEYS]
    header = "# Written by `game-server users create`: your team's settings. Keep it private.\n"
    return header + "\n".join(lines) + "\n"


def parse_env(text: str) -> dict[str, str]:
    """KEY=VALUE pairs of a .env (comments skipped; `export `, outer quotes, escapes removed)."""
    pairs = {}
    for line in text.splitlines():
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if not sep or key.startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        elif len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        pairs[key.strip()] = value
    return pairs
