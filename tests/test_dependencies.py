"""Every package the code imports is declared where its installer reads it: pyproject.toml
for the game server, participant_starter/requirements.txt for a team's venv. An import
that works only because another package pulled it in breaks on the day it stops doing so."""

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(folder: Path) -> set[str]:
    """The top-level names of every absolute import in the Python files under `folder`."""
    names = set()
    for path in folder.rglob("*.py"):
        if "_kit" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return names


def third_party(names: set[str], own: set[str]) -> dict[str, set[str]]:
    """The distributions that provide the third-party modules among `names`."""
    providers = importlib.metadata.packages_distributions()
    found: dict[str, set[str]] = {}
    for name in sorted(names - own - set(sys.stdlib_module_names)):
        dists = providers.get(name)
        assert dists, f"module {name!r} is imported but no installed distribution provides it"
        found[name] = {canonicalize_name(d) for d in dists}
    return found


def declared(requirements: list[str]) -> set[str]:
    """The canonical names of requirement strings."""
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def missing(imports: dict[str, set[str]], allowed: set[str]) -> list[str]:
    """`module (distribution)` for each import whose distribution is not declared."""
    return [f"{m} ({', '.join(sorted(d))})" for m, d in imports.items() if not d & allowed]


def test_the_game_server_declares_what_it_imports():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = declared(project["dependencies"])
    own = {"game_server", "main", "modules"}  # main, modules: the starter's (demo bots)
    imports = third_party(imported_modules(ROOT / "game_server"), own)
    assert missing(imports, core) == [], "declare these in pyproject.toml [project] dependencies"


@pytest.mark.parametrize("folder", ["participant_starter"])
def test_the_starter_declares_what_it_imports(folder):
    lines = (ROOT / folder / "requirements.txt").read_text().splitlines()
    reqs = declared([line for line in lines if line.strip() and not line.startswith("#")])
    own = {p.stem for p in (ROOT / folder).glob("*.py")} | {"modules", "tests", "conftest"}
    imports = third_party(imported_modules(ROOT / folder), own)
    assert missing(imports, reqs) == [], f"declare these in {folder}/requirements.txt"
