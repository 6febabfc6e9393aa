"""Every package the code imports is declared where its installer reads it: pyproject.toml
for the game server, participant_starter/requirements.txt for a team's venv. An import
that works only because another package pulled it in breaks on the day it stops doing so."""

import ast
import importlib.metadata
import json
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from game_server.common import extras

ROOT = Path(__file__).resolve().parents[1]


def imports_of(tree: ast.AST) -> set[str]:
    """The top-level names of every absolute import in `tree`."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def imported_modules(folder: Path, skip: tuple[Path, ...] = ()) -> set[str]:
    """The top-level names imported by the Python files under `folder` (not under `skip`)."""
    names = set()
    for path in folder.rglob("*.py"):
        if "_kit" in path.parts or any(path.is_relative_to(s) for s in skip):
            continue
        names |= imports_of(ast.parse(path.read_text(encoding="utf-8")))
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


def project_requirements(extra: str | None = None) -> set[str]:
    """The canonical names pyproject.toml declares: the core's, or one extra's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return declared(project["optional-dependencies"][extra] if extra else project["dependencies"])


# The parts of the install (game_server/common/extras.py): an extra's folders may import the
# core's libraries and its own. The demo's bots run the participant starter (not its tests).
EXTRA_PARTS = {
    "demo": ["game_server/demo", "participant_starter"],
    "accounts": ["game_server/accounts", "game_server/rehearsal"],
}
OWN = {"game_server", "main", "modules"}  # main, modules: the starter's (the demo's bots)


def test_the_game_server_declares_what_it_imports():
    """Everything but the extras' folders imports only the core (the image's install)."""
    skip = tuple(ROOT / f for folders in EXTRA_PARTS.values() for f in folders)
    names = imported_modules(ROOT / "game_server", skip=skip)
    imports = third_party(names, OWN)
    assert missing(imports, project_requirements()) == [], (
        "declare these in pyproject.toml [project] dependencies"
    )


@pytest.mark.parametrize("extra", sorted(EXTRA_PARTS))
def test_each_extra_declares_what_its_part_imports(extra):
    starter_tests = (ROOT / "participant_starter" / "tests",)  # the team's, not the bots'
    names = set().union(*(imported_modules(ROOT / f, starter_tests) for f in EXTRA_PARTS[extra]))
    imports = third_party(names, OWN)
    allowed = project_requirements() | project_requirements(extra)
    assert missing(imports, allowed) == [], f"declare these in pyproject.toml's {extra} extra"


def test_the_hints_name_exactly_each_extras_libraries():
    """extras.MODULES (what `require` looks for) is each extra's requirements, no more, no
    less, and none of them is in the core install already."""
    providers = importlib.metadata.packages_distributions()
    for extra, modules in extras.MODULES.items():
        dists = {canonicalize_name(d) for m in modules for d in providers[m]}
        assert dists == project_requirements(extra), extra
        assert not dists & project_requirements(), f"{extra}: already in the core install"


def notebook_imports() -> set[str]:
    """The top-level names the instructor's notebooks import."""
    names = set()
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                code = "".join(cell["source"])
                lines = [line for line in code.splitlines() if not line.startswith(("%", "!"))]
                names |= imports_of(ast.parse("\n".join(lines)))
    return names


def test_the_notebooks_declare_what_they_import():
    allowed = project_requirements() | project_requirements("notebooks")
    imports = third_party(notebook_imports(), OWN)
    assert missing(imports, allowed) == [], "declare these in pyproject.toml's notebooks extra"


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
        ("Makefile", "-c constraints.txt -e '.[test,pg,notebooks,demo,accounts]'"),
        ("scripts/setup_server.sh", 'pip install --quiet -c "$REPO/constraints.txt"'),
        ("Dockerfile", "pip install --no-cache-dir -c /src/constraints.txt"),
    ],
)
def test_every_installer_uses_the_lock(installer, needle):
    """make install (and so CI), the server's set-up and the image install the same versions."""
    assert needle in (ROOT / installer).read_text()
