"""Paths and settings: folders from the project root, settings from the environment or `.env`."""

import os
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "data"
MODELS_DIR = ROOT / "models"
OUTPUT_DIR = ROOT / "output"
TRAIN_CSV = DATA_DIR / "train_data.csv"

# Every setting the starter reads, with its default. `.env` (git-ignored) overrides the
# defaults, and a variable already set in the shell overrides `.env`.
DEFAULTS = {
    "HOST": "127.0.0.1",  # 0.0.0.0 makes the API reachable from other machines too
    "PORT": "5000",  # your team's API port (from your handout)
    "THREADS": "32",  # waitress worker threads: a whole burst at once (batched together)
    "BATCH_WINDOW_MS": "5",  # wait this long for company to predict together; 0: off
    "BATCH_MAX_SIZE": "64",  # the most requests predicted in one call of the model
    "MODEL_PATH": "models/model.pkl",  # relative paths are relative to this folder
    "MODEL_CHECK_SECONDS": "2",  # how often the API looks for a newer model file
    "DATABASE_URL": "sqlite:///output/predictions.sqlite",  # a file in output/
    "LOG_LEVEL": "INFO",
    "LOG_FILE": "output/api.log",  # the API logs here and to the terminal
    "GAME_URL": "http://127.0.0.1:8000",  # the game server, for your feedback
    "TEAM_TOKEN": "",  # your team token (from your handout)
}

# The numeric settings: how to read each one, its smallest and largest value, what it means.
NUMBERS = {
    "PORT": (int, 1, 65535, "your API port, a number from your handout"),
    "THREADS": (int, 1, 1000, "a number of threads, e.g. 32"),
    "BATCH_WINDOW_MS": (float, 0, 1000, "milliseconds, e.g. 5 (0 turns batching off)"),
    "BATCH_MAX_SIZE": (int, 1, 10_000, "a number of requests, e.g. 64"),
    "MODEL_CHECK_SECONDS": (float, 0, 3600, "a number of seconds, e.g. 2"),
}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class SettingsError(ValueError):
    """A setting holds a value the starter cannot work with; the message says which."""


def load_settings() -> dict[str, str]:
    """Every setting: the defaults, overridden by `.env`, overridden by the environment."""
    load_dotenv(ROOT / ".env", override=False)
    return {name: os.environ.get(name) or default for name, default in DEFAULTS.items()}


def check_settings(settings: dict[str, str]) -> dict[str, str]:
    """Return `settings` when every value can work; else raise one SettingsError saying why.

    Checked here, at start-up, so a typo in `.env` is one clear line, not a traceback later.
    """
    for name, (read, low, high, meaning) in NUMBERS.items():
        try:
            ok = low <= read(settings[name]) <= high
        except ValueError:
            ok = False
        if not ok:
            raise SettingsError(
                f"{name}={settings[name]!r} cannot work: it must be {meaning} (fix .env)"
            )
    if settings["LOG_LEVEL"].upper() not in LOG_LEVELS:
        levels = ", ".join(LOG_LEVELS)
        raise SettingsError(
            f"LOG_LEVEL={settings['LOG_LEVEL']!r} must be one of {levels} (fix .env)"
        )
    return settings


def resolve(path: str | Path) -> Path:
    """A path from the settings: relative paths start at the project root, not the cwd."""
    path = Path(path)
    return path if path.is_absolute() else ROOT / path
