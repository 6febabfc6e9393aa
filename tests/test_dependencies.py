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


def pins() -> dict[str, list[tuple[str, Requirement]]]:
    """constraints.txt: each package's pinned version(s), with the markers they hold under."""
    found: dict[str, list[tuple[str, Requirement]]] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            req = Requirement(line)
            (version,) = [s.version for s in req.specifier if s.operator == "=="]
            found.setdefault(canonicalize_name(req.name), []).append((version, req))
    return found


def all_requirements() -> list[Requirement]:
    """Every requirement the project declares: the package, its extras, the starter's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"])
    texts += [r for extra in project["optional-dependencies"].values() for r in extra]
    lines = (ROOT / "participant_starter" / "requirements.txt").read_text().splitlines()
    texts += [line for line in lines if line.strip() and not line.startswith("#")]
    return [Requirement(t) for t in texts]


def test_the_lock_pins_every_declared_requirement_within_its_range():
    """constraints.txt (`make lock`) is current: every requirement is pinned, in range."""
    locked = pins()
    for req in all_requirements():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is not in constraints.txt: run make lock"
        for version, _ in locked[name]:
            assert req.specifier.contains(version, prereleases=True), (
                f"{req.name}: the lock has {version}, outside {req.specifier}: run make lock"
            )


def test_the_floors_are_the_series_that_is_tested():
    """A lower bound older than the locked release series (the versions the suite runs on)
    would promise what nobody tested: the floor's major version (minor, for 0.x) is the lock's."""
    locked = pins()
    for req in all_requirements():
        floors = [s.version for s in req.specifier if s.operator == ">="]
        if not floors:
            continue
        floor = tuple(int(x) for x in floors[0].split(".")[:2]) + (0,)
        for version, _ in locked[canonicalize_name(req.name)]:
            tested = tuple(int(x) for x in version.split(".")[:2])
            series = tested[:1] if tested[0] else tested[:2]
            assert floor[: len(series)] == series, (
                f"{req}: the suite runs on {version}; raise the floor to that series"
            )


@pytest.mark.parametrize(
    ("installer", "needle"),
    [
        ("Makefile", "pip install --quiet -c constraints.txt -e '.[test,pg,notebooks]'"),
        ("scripts/setup_server.sh", 'pip install --quiet -c "$REPO/constraints.txt"'),
        ("Dockerfile", "pip install --no-cache-dir -c /src/constraints.txt"),
    ],
)
def test_every_installer_uses_the_lock(installer, needle):
    """make install (and so CI), the server's set-up and the image install the same versions."""
    assert needle in (ROOT / installer).read_text()
