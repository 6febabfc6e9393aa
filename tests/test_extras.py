"""The game's own install (`pip install .`, as the Dockerfile does) runs the game; the demo's
and the accounts' commands say which extra to add, in one line.

How: not a fresh venv (a minute of pip for every run, and an index to reach) but this
venv with everything the core install would not bring made unimportable. From
pyproject.toml's [project] dependencies the installed packages' own metadata gives the
closure pip would install (markers evaluated here, as pip would); every other installed
distribution's top-level modules (scikit-learn, paramiko, requests, pytest...) are refused
by a meta path finder that `sitecustomize` puts first in every Python process the commands
start (PYTHONPATH). The commands run for real, as subprocesses, on an SQLite file. What this
cannot see is a core package missing from this venv: test_dependencies.py checks that the
imports are declared, and the lock that they install.
"""

import importlib.metadata
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from game_server.common import extras

ROOT = Path(__file__).resolve().parents[1]
GAME_SERVER = Path(sys.executable).parent / "game-server"
# What `python -m venv` brings besides the install; the game itself is its own distribution.
VENV_BRINGS = {"pip", "setuptools", "game-server"}
# Only the extras' commands import these (lazily): the core install never loads them.
EXTRA_ONLY = ("game_server.demo.", "game_server.rehearsal.")
EXTRA_COMMAND_MODULES = {"game_server.demo.command", "game_server.rehearsal.cli"}

SITECUSTOMIZE = """
import json, os, sys
BLOCKED = set(json.loads(os.environ["GAME_TEST_BLOCKED"]))
loaded = BLOCKED & {name.partition(".")[0] for name in sys.modules}
if loaded:  # imported before this file ran (a .pth file): the test would prove nothing
    sys.exit(f"sitecustomize: already imported: {sorted(loaded)}")


class NotInTheCoreInstall:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (core install)", name=name)
        return None


sys.meta_path.insert(0, NotInTheCoreInstall())
"""


def core_closure() -> set[str]:
    """The distributions `pip install .` brings: [project] dependencies and theirs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [(Requirement(r), "") for r in project["dependencies"]]
    found: set[str] = set()
    while todo:
        req, extra = todo.pop()
        if req.marker and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        wanted = {(name, e) for e in ["", *req.extras]}
        if all(w in found for w in wanted):
            continue
        found |= wanted
        dist = importlib.metadata.distribution(name)
        for text in dist.requires or []:
            todo += [(Requirement(text), e) for e in ["", *req.extras]]
    return {name for name, _ in found}


def blocked_modules(allowed: set[str]) -> set[str]:
    """Top-level modules that no allowed distribution provides."""
    blocked = set()
    for module, dists in importlib.metadata.packages_distributions().items():
        if not {canonicalize_name(d) for d in dists} & allowed:
            blocked.add(module)
    return blocked - set(sys.stdlib_module_names)


@pytest.fixture(scope="module")
def core(tmp_path_factory):
    """(environment, blocked modules) for a process that sees only the core install."""
    folder = tmp_path_factory.mktemp("core-install")
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    blocked = blocked_modules(core_closure() | VENV_BRINGS)
    env = {
        **os.environ,
        "PYTHONPATH": str(folder),
        "GAME_TEST_BLOCKED": json.dumps(sorted(blocked)),
        "GAME_DATABASE_URL": f"sqlite:///{folder / 'game.sqlite'}",
    }
    return env, blocked, folder


def run(core, *argv: str) -> subprocess.CompletedProcess:
    env, _, folder = core
    return subprocess.run(
        argv, env=env, cwd=folder, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_core_install_leaves_the_extras_out(core):
    """The extras' libraries (and the plotly Python package) are not in the core install,
    and a process started as the commands are cannot import them."""
    _, blocked, _ = core
    assert "plotly" not in core_closure()
    for extra_modules in extras.MODULES.values():
        assert set(extra_modules) <= blocked
    for module in ("sklearn", "paramiko", "requests"):
        result = run(core, sys.executable, "-c", f"import {module}")
        assert result.returncode == 1 and f"No module named '{module}'" in result.stderr


def test_every_module_the_game_loads_imports_with_the_core_alone(core):
    """All of game_server but the demo's and the rehearsal's machinery (imported only by
    their commands, after `extras.require`): serve, the web app, the loop, storage..."""
    names = [
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in sorted((ROOT / "game_server").rglob("*.py"))
        if "_kit" not in p.parts
    ]
    names = [n.removesuffix(".__init__") for n in names]
    core_names = [n for n in names if n in EXTRA_COMMAND_MODULES or not n.startswith(EXTRA_ONLY)]
    assert "game_server.web.app" in core_names and "game_server.processes.serve" in core_names
    script = f"import importlib\nfor n in {core_names!r}:\n    importlib.import_module(n)\n"
    result = run(core, sys.executable, "-c", script)
    assert result.returncode == 0, result.stderr


def test_the_games_commands_run_with_the_core_alone(core):
    """`game-server --help`, `init` on an SQLite file, `teams add`, `game check`, `export`
    and `doctor`: the console script, as the image runs it."""
    result = run(core, str(GAME_SERVER), "--help")
    assert result.returncode == 0 and "demo" in result.stdout, result.stderr
    result = run(core, str(GAME_SERVER), "init", "--game", "demo")
    assert result.returncode == 0, result.stderr
    result = run(core, str(GAME_SERVER), "teams", "add", "alpha", "--url", "http://127.0.0.1:9/p")
    assert result.returncode == 0, result.stderr
    result = run(core, str(GAME_SERVER), "game", "check", "workshop")
    assert result.returncode == 0, result.stderr
    result = run(core, str(GAME_SERVER), "export", "--out", "exported")
    assert result.returncode == 0 and "exported to" in result.stdout, result.stderr
    result = run(core, str(GAME_SERVER), "doctor", "--port", "9")
    assert "Traceback" not in result.stderr and "No module named" not in result.stderr
    assert result.stdout.strip() or result.stderr.strip()


@pytest.mark.parametrize(
    ("argv", "command", "extra"),
    [
        (["demo", "--no-browser"], "game-server demo", "demo"),
        (["users", "list"], "game-server users list", "accounts"),
        (["users", "create", "roster.csv", "--dry-run"], "game-server users create", "accounts"),
        (["rehearse", "--teams", "1"], "game-server rehearse", "accounts"),
    ],
)
def test_an_extras_command_names_the_extra_in_one_line(core, argv, command, extra):
    """Without its extra the command stops before it does anything: one line, exit 1."""
    (core[2] / "roster.csv").write_text("name\nalpha\n")
    result = run(core, str(GAME_SERVER), *argv)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: {command} needs the {extra} extra: pip install -c constraints.txt "
        f"'.[{extra}]' in the game's checkout (make install has every extra)"
    ]
