"""The settings (issue 26): declared once, read through one function, and the doc, the
command line and the code agree (datasette's settings and their docs test are the model)."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from game_server.cli.main import main
from game_server.common import settings, state_dir
from game_server.storage import database
from game_server.web.app import ConfigError, check_settings, create_app

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "game_server"
DECLARED = {s.env: s for s in settings.SETTINGS}
OTHER = {n.strip() for names, _ in settings.OTHER_VARIABLES for n in names.split(",")}
# GAME_ words in the code that are not variables the game server reads.
NOT_SETTINGS = {
    "GAME_ID": "the id of the one games row (storage/schema.py)",
    "GAME_KEYS": "the game file's [game] keys (scenario/gamekeys.py)",
    "GAME_NAME_RULE": "an import alias of the team name rule",
    "GAME_URL": "a key of a team's .env, read by the participant starter (and the demo bots)",
}


def source_files():
    """Every Python module of the game server, with its text."""
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), path.read_text()


def environment_reads(tree: ast.AST):
    """(name, how) of every variable a module reads by a literal name: os.environ[...],
    os.environ.get/pop/setdefault(...), os.getenv(...), click's envvar=...."""
    readers = ("os.getenv", "os.environ.get", "os.environ.pop", "os.environ.setdefault")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Subscript)
            and ast.unparse(node.value) == "os.environ"
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.ctx, ast.Load)
        ):
            yield node.slice.value, "os.environ[]"
        if not isinstance(node, ast.Call):
            continue
        called = ast.unparse(node.func)
        if called in readers and node.args and isinstance(node.args[0], ast.Constant):
            yield node.args[0].value, called
        for keyword in node.keywords:
            if keyword.arg == "envvar" and isinstance(keyword.value, ast.Constant):
                yield keyword.value.value, "envvar="


def test_the_doc_is_the_rendering_of_the_declarations():
    """docs/SETTINGS.md is exactly what `make settings-doc` writes, naming every setting."""
    doc = (ROOT / "docs" / "SETTINGS.md").read_text()
    assert doc == settings.markdown(), "run: make settings-doc"
    for s in settings.SETTINGS:
        assert f"| `{s.env}` |" in doc
    checked = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_doc.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout


def test_each_setting_is_declared_once():
    """One name, one variable, one help per setting; the variables are GAME_ ones."""
    assert len({s.name for s in settings.SETTINGS}) == len(settings.SETTINGS)
    assert len(DECLARED) == len(settings.SETTINGS)
    for s in settings.SETTINGS:
        assert s.env == "GAME_" + s.name.upper()
        assert s.help.endswith(".") and "\n" not in s.help
        assert s.default is not None or s.default_doc, f"{s.env}: say what unset means"


def test_the_code_reads_only_declared_variables_and_game_ones_only_through_get():
    """Every variable read by a literal name is declared (or one of the others the doc
    lists), and only common/settings.py reads a GAME_ variable itself."""
    undeclared, direct = [], []
    for rel, text in source_files():
        for name, how in environment_reads(ast.parse(text)):
            if name not in DECLARED and name not in OTHER:
                undeclared.append(f"{rel}: {how} {name}")
            if name.startswith("GAME_") and how != "envvar=" and rel != "common/settings.py":
                direct.append(f"{rel}: {how} {name}")
    assert undeclared == []
    assert direct == []


def test_every_game_variable_the_code_names_is_declared():
    """A GAME_ name anywhere in the code (a message, a docstring, a child's environment)
    is a declared setting, or one of the few names that are not variables of the server."""
    named = {}
    for rel, text in source_files():
        for word in re.findall(r"\bGAME_[A-Z][A-Z0-9_]*\b", text):
            named.setdefault(word, rel)
    strays = {w: rel for w, rel in named.items() if w not in DECLARED and w not in NOT_SETTINGS}
    assert strays == {}


def test_every_declared_setting_is_used():
    """No declaration is left behind: each one is used by a module besides common/settings.py."""
    others = "\n".join(text for rel, text in source_files() if rel != "common/settings.py")
    constants = {v.env: k for k, v in vars(settings).items() if isinstance(v, settings.Setting)}
    assert set(constants) == set(DECLARED)
    unused = [env for env, const in constants.items() if not re.search(rf"\b{const}\b", others)]
    assert unused == []


def commands(command: click.Command, path: tuple[str, ...] = ()):
    """(path, command) of the group and every command under it."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from commands(sub, (*path, name))


def test_the_command_line_options_are_the_declared_settings():
    """Every option with a variable, in every command, is a declared setting's: its name,
    default and help, and `--help` shows the variable."""
    seen = set()
    for path, command in commands(main):
        with_env = [p for p in command.params if p.envvar]
        if not with_env:
            continue
        shown = CliRunner().invoke(main, [*path, "--help"])
        assert shown.exit_code == 0, (path, shown.output)
        text = " ".join(shown.output.split())
        for param in with_env:
            s = DECLARED.get(str(param.envvar))
            assert s is not None, f"{path} {param.opts}: {param.envvar} is not declared"
            seen.add(s.env)
            assert s.option in param.opts, (path, param.opts)
            default = None if s.default is None else str(s.default)
            assert param.default == default, (path, param.opts)
            assert isinstance(param, click.Option) and s.help.rstrip(".") in (param.help or "")
            assert f"env var: {s.env}" in text, (path, s.env)
    assert seen == {s.env for s in settings.SETTINGS if s.option}


def test_get_reads_the_environment_then_the_default_typed():
    """A variable set wins, parsed to its type; unset or empty is the default."""
    env = {"GAME_LOG_LEVEL": "debug", "GAME_SLIDES_DIR": "~/deck", "GAME_SYSTEM_ENV": ""}
    assert settings.get(settings.LOG_LEVEL, env) == "DEBUG"
    assert settings.get(settings.SLIDES_DIR, env) == Path.home() / "deck"
    assert settings.get(settings.SYSTEM_ENV, env) == Path("/etc/game-server/env")
    assert settings.get(settings.DATABASE_URL, {}) is None
    assert settings.get(settings.PSQL_ADMIN, {}).startswith("sudo -n -u postgres psql")


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        (settings.LOG_LEVEL, "loud", "GAME_LOG_LEVEL is 'loud', not one of DEBUG, INFO"),
        (settings.ADMIN_TOKEN, "short", "GAME_ADMIN_TOKEN is 5 characters long"),
        (settings.PSQL_ADMIN, 'psql "open', "GAME_PSQL_ADMIN is not a command line"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(setting, value, says):
    with pytest.raises(settings.SettingError) as raised:
        settings.get(setting, {setting.env: value})
    assert str(raised.value).startswith(says) and "\n" not in str(raised.value)


def test_a_bad_log_level_in_the_environment_stops_the_command_with_one_line():
    """GAME_LOG_LEVEL=loud: exit 1, one line naming the variable (no usage text); the same
    word on the command line is a usage error naming the option."""
    env = {**os.environ, "GAME_LOG_LEVEL": "loud"}
    done = subprocess.run(
        [sys.executable, "-m", "game_server", "data", "--help"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "Error: GAME_LOG_LEVEL is 'loud', not one of DEBUG, INFO, WARNING, ERROR"
    ]
    given = CliRunner().invoke(main, ["--log-level", "loud", "data", "--help"])
    assert given.exit_code == 2 and "Invalid value for '--log-level'" in given.output
    quiet = CliRunner().invoke(main, ["data", "--help"], env={"GAME_LOG_LEVEL": "warning"})
    assert quiet.exit_code == 0


def test_a_bad_psql_admin_in_the_environment_is_one_line(tmp_path):
    result = CliRunner().invoke(
        main, ["users", "list"], env={"GAME_PSQL_ADMIN": 'psql "open'}, catch_exceptions=False
    )
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: GAME_PSQL_ADMIN is not a command line (No closing quotation): 'psql \"open'"
    ]


def test_the_web_app_and_the_database_take_their_settings_from_the_environment(
    sqlite_url, tmp_path, monkeypatch
):
    """The app's config, the command's database and the state folder come through `get`."""
    monkeypatch.setenv("GAME_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("GAME_SLIDES_DIR", str(tmp_path / "deck"))
    monkeypatch.setenv("GAME_SECRET_KEY", "from the environment")
    monkeypatch.setenv("GAME_ADMIN_TOKEN", "x" * 16)
    monkeypatch.setenv("GAME_STATE_DIR", str(tmp_path / "state"))
    app = create_app()
    assert app.config["DATABASE_URL"] == sqlite_url
    assert app.config["SLIDES_DIR"] == tmp_path / "deck"
    assert app.config["SECRET_KEY"] == "from the environment"
    assert app.config["ADMIN_TOKEN"] == "x" * 16
    assert database.database_url() == database.database_url(sqlite_url)
    assert state_dir.state_dir() == tmp_path / "state"
    monkeypatch.setenv("GAME_ADMIN_TOKEN", "short")
    with pytest.raises(ConfigError, match="^GAME_ADMIN_TOKEN is 5 characters long"):
        create_app()


def test_run_checks_the_apps_settings_without_building_the_app(tmp_path, monkeypatch):
    """`run` checks the web's settings first, touching no database (no secret key written)."""
    game_db = tmp_path / "game.sqlite"
    monkeypatch.setenv("GAME_DATABASE_URL", f"sqlite:///{game_db}")
    monkeypatch.setenv("GAME_ADMIN_TOKEN", "x" * 16)
    check_settings()
    assert not game_db.exists()
    monkeypatch.setenv("GAME_ADMIN_TOKEN", "short")
    with pytest.raises(ConfigError, match="^GAME_ADMIN_TOKEN is 5 characters long"):
        check_settings()
