"""Every folder that holds code stays readable: small modules, short functions (issues 13, 26).

The limits per folder are the table `LIMITS` below, in this one place. Style and format
(`ruff check .`, `ruff format --check .`) cover every folder; the direction of imports
between game_server's parts is checked by `lint-imports` (contracts in pyproject.toml) and
the types of game_server/ and participant_starter/ by mypy, all in `make lint`.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "game_server"
# Folder: (most lines in a module, most lines in a function or method). The same for every
# folder: the benchmarks and scripts are read and changed like the rest (a benchmark that
# outgrows a module splits into its game, its load and its report, as bench/shard_*.py do).
# In tests/ the helper modules are checked; a test module (test_*.py) is not: each test
# reads as one scenario from set-up to assertions, and a module holds one subject's tests.
LIMITS = {
    "game_server": (400, 60),
    "participant_starter": (400, 60),
    "bench": (400, 60),
    "scripts": (400, 60),
    "tests": (400, 60),
}
# Being split (issue 13): this set only shrinks (paths relative to the repository).
NOT_YET: set[str] = set()


def modules():
    """Every Python module the size rules cover: its path in the repository, text and limits."""
    for folder, limits in LIMITS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in NOT_YET or (folder == "tests" and path.name.startswith("test_")):
                continue
            yield rel, path.read_text(), limits


def test_no_module_over_the_limit():
    """No module is over its folder's most lines (LIMITS)."""
    long = {rel: n for rel, text, (most, _) in modules() if (n := text.count("\n")) > most}
    assert long == {}


def test_no_function_over_the_limit():
    """No function or method is over its folder's most lines (LIMITS)."""
    long = []
    for rel, text, (_, most) in modules():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > most:
                    long.append(f"{rel}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_the_limits_are_met_formatted():
    """No formatter opt-out anywhere: the limits hold for the code as `ruff format` writes it."""
    opt_out = re.compile(r"#\s*fmt:\s*(skip|off)|#\s*yapf:\s*disable")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in LIMITS
        for path in sorted((ROOT / folder).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if opt_out.search(line)
    ]
    assert found == []


def test_every_part_says_what_it_owns_and_may_import():
    """Each package's __init__ docstring names what it owns and what it may import."""
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "May import" in doc, f"{init.relative_to(PACKAGE)} does not say what it may import"


def test_the_design_page_names_every_module():
    """docs/DESIGN.md's tables name every module of game_server/ (they cannot go stale)."""
    design = (PACKAGE.parent / "docs" / "DESIGN.md").read_text()
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if path.name == "__init__.py" or rel.startswith("demo/bots/"):
            continue  # a folder's __init__ is its row; the bots are one row
        if f"`{rel}`" not in design:
            missing.append(rel)
    assert missing == []


def test_the_top_level_holds_only_the_entry_points():
    """Every module is in a part's folder (issue 26): the top level keeps the package's
    `__init__.py` and `python -m game_server`'s `__main__.py`, nothing else."""
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "__main__.py"]
