"""The package's files (packages and package data); everything else is in pyproject.toml.

Besides `game_server`, an install carries the workshop kit as package data under
`game_server/_kit/`, so that one `pip install` on the server can provision teams
(`game-server users create` finds it with accounts.config.kit_path): the participant starter,
the training data and its dictionary, and the shared init SQL. Each kit folder is mapped
into the package (setuptools `package_dir`) with the same layout as in this repository. A
build from a partial copy (the Dockerfile copies only `game_server/`) leaves the kit out.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
# package -> (folder in this repository, the files it carries)
KIT = {
    "game_server._kit.participant_starter": (
        "participant_starter",
        ["*", ".env.example", ".gitignore"],
    ),
    "game_server._kit.data": ("data", ["README.md", "train_data.csv"]),
    "game_server._kit.database_docker.initdb": ("database_docker/initdb", ["*.sql", "*.sh"]),
}
# Never in the kit: what a checkout makes when it is used (caches, trained models, results).
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".ruff_cache", ".venv"}
SKIP_FILES = ["*.pyc", "*.pkl", "*.joblib", "*.sqlite", "*.sqlite3", "*.db", "*.csv", "*.log"]


def kit() -> tuple[list[str], dict[str, str], dict[str, list[str]], dict[str, list[str]]]:
    """The kit's packages (a folder each), their folders, their files and what to leave out."""
    packages, package_dir, data, skip = [], {}, {}, {}
    for package, (folder, files) in KIT.items():
        root = HERE / folder
        if not root.is_dir():
            continue
        package_dir[package] = folder
        for sub in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
            rel = sub.relative_to(root)
            if set(rel.parts) & SKIP_DIRS or any(part.startswith(".") for part in rel.parts):
                continue
            name = ".".join([package, *rel.parts])
            packages.append(name)
            data[name] = files if sub == root else ["*"]
            keep_csv = package == "game_server._kit.data"
            skip[name] = [p for p in SKIP_FILES if not (keep_csv and p == "*.csv")]
    return packages, package_dir, data, skip


packages, package_dir, package_data, exclude = kit()
setup(
    packages=find_packages(include=["game_server", "game_server.*"]) + packages,
    package_dir=package_dir,
    package_data={
        "game_server": ["scenario/games/*.toml", "static/**/*", "templates/**/*"],
        **package_data,
    },
    exclude_package_data=exclude,
)
