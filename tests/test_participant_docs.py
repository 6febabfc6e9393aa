"""What a team reads: the data dictionary in its home, the starter's README as it runs on
the workshop server, and the slides' code."""

import re
import subprocess
from pathlib import Path

from readme_blocks import LONG_RUNNING, laptop_blocks, long_running, programs, server_blocks

from game_server.accounts import markers

ROOT = Path(__file__).resolve().parent.parent
DICTIONARY = ROOT / "data" / "README.md"
TEAM_DICTIONARY = ROOT / "participant_starter" / "data" / "README.md"
LEAK = "collection_calls"


def test_every_team_gets_the_data_dictionary_itself():
    """The starter's copy is the kit's page, byte for byte (the slides tell teams to read it)."""
    assert TEAM_DICTIONARY.read_bytes() == DICTIONARY.read_bytes(), (
        "edit data/README.md, then: cp data/README.md participant_starter/data/README.md"
    )


def dictionary(level: str) -> str:
    """The data dictionary as a team gets it at `level` (its markers: levels.py)."""
    both = markers.split("README.md", DICTIONARY.read_text(encoding="utf-8"))
    return both.complete if level == "complete" else both.exercises


def test_the_dictionary_names_the_leak_only_in_its_table_row_and_footnote():
    """GAME.md §4: the leak column is listed like any other; only a footnote says why."""
    body, footnote = dictionary("complete").split("\n---\n", 1)
    mentions = [line for line in body.splitlines() if LEAK in line]
    assert len(mentions) == 1 and mentions[0].startswith(f"| `{LEAK}` |"), mentions
    assert mentions[0].rstrip(" |").endswith("¹")
    assert re.match(rf"\s*¹ `{LEAK}`", footnote) and "after" in footnote


def test_at_the_exercise_level_the_dictionary_lists_the_leak_without_a_word_on_it():
    """The leak is found, not told: its row like any other's, no footnote."""
    text = dictionary("exercises")
    mentions = [line for line in text.splitlines() if LEAK in line]
    assert len(mentions) == 1 and mentions[0].rstrip(" |").endswith("department.")
    assert "¹" not in text and "\n---\n" not in text


# ---- participant_starter/README.md, as a team runs it (conventions: tests/readme_blocks.py)

README = ROOT / "participant_starter" / "README.md"
MAIN = ROOT / "participant_starter" / "main.py"
ENV_EXAMPLE = ROOT / "participant_starter" / ".env.example"
REQUIREMENTS = ROOT / "participant_starter" / "requirements.txt"
SETUP = ROOT / "scripts" / "setup_server.sh"
DECK = ROOT / "slides" / "deck.md"

# What a team's login shell has: the variables of its ~/participant_starter/.env, exported
# by the profile snippet provisioning writes, and what every login shell has.
LOGIN_VARIABLES = {
    *("PORT", "JUPYTER_PORT", "DEBUG_PORT", "GAME_URL", "TEAM_TOKEN", "DATABASE_URL"),
    *("TEAM_NAME", "HOME", "USER", "PATH"),
}
# Where each program the README runs on the server comes from: a shell builtin, Debian's
# essential set, the shared venv (/opt/workshop/venv, first on a team's PATH: the starter's
# requirements), or a Debian package that scripts/setup_server.sh installs.
PROGRAMS = {
    "cd": "builtin",
    "echo": "builtin",
    "which": "essential",
    "python": "venv",
    "jupyter": "jupyterlab",
    "flask": "flask",
    "pytest": "pytest",
    "tmux": "tmux",
    "curl": "curl",
    "grep": "essential",
}


def readme_commands() -> list[str]:
    """Every command of the README's server blocks, long-running ones included."""
    return [c for b in server_blocks(README.read_text(encoding="utf-8")) for c in b.commands]


def requirement_names() -> set[str]:
    """The package names of the starter's requirements.txt."""
    lines = REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    names = [re.match(r"[\w.-]+", line) for line in lines if not line.startswith("#")]
    return {name.group(0).lower() for name in names if name}


def setup_packages() -> set[str]:
    """The Debian packages setup_server.sh installs (its PACKAGES array)."""
    found = re.search(r"^PACKAGES=\(([^)]*)\)", SETUP.read_text(encoding="utf-8"), re.MULTILINE)
    return set(found.group(1).split())


def test_the_guide_starts_in_the_folder_a_team_has():
    first = server_blocks(README.read_text(encoding="utf-8"))[0]
    assert first.commands[0] == "cd ~/participant_starter"
    assert "~/starter" not in README.read_text(encoding="utf-8")


def test_no_server_command_replaces_env_or_builds_a_venv():
    for command in readme_commands():
        assert ".env.example" not in command and not re.search(r">\s*\S*\.env\b", command)
        assert "activate" not in command and "-m venv" not in command, command
        assert not {"ssh", "scp"} & set(programs(command)), f"a laptop command: {command}"


def test_the_tunnels_are_laptop_blocks():
    laptop = [c for b in laptop_blocks(README.read_text(encoding="utf-8")) for c in b.commands]
    assert any(c.startswith("ssh -N -L ") for c in laptop), laptop


def test_every_variable_comes_with_the_login_shell():
    used = {v for c in readme_commands() for v in re.findall(r"\$\{?([A-Za-z_]\w*)", c)}
    assert used and used <= LOGIN_VARIABLES, used - LOGIN_VARIABLES


def test_every_port_is_the_teams_own():
    for command in readme_commands():
        for port in re.findall(r"--port[ =](\S+)|(?:localhost|127\.0\.0\.1):([^/\s]+)", command):
            assert "".join(port).startswith("$"), f"a fixed port in: {command}"


def test_long_running_commands_are_marked_one_a_block():
    markdown = README.read_text(encoding="utf-8")
    assert long_running(markdown) == [
        "jupyter lab --no-browser --port $JUPYTER_PORT",
        "flask --app main run --debug --port $DEBUG_PORT",
    ]
    for block in server_blocks(markdown):
        if LONG_RUNNING in block.tags:
            assert len(block.commands) == 1, block


def test_every_program_is_installed_on_the_server():
    have = requirement_names() | setup_packages() | {"builtin", "essential", "venv"}
    for command in readme_commands():
        for program in programs(command):
            assert program in PROGRAMS, f"where does {program!r} come from? ({command})"
            assert PROGRAMS[program] in have, f"{PROGRAMS[program]} is installed by nothing"


def test_server_blocks_are_valid_bash():
    for block in server_blocks(README.read_text(encoding="utf-8")):
        done = subprocess.run(["bash", "-n"], input=block.text, capture_output=True, text=True)
        assert done.returncode == 0, f"line {block.line}: {done.stderr}"


def test_main_and_the_guide_start_the_api_the_same_way():
    doc, commands = MAIN.read_text(encoding="utf-8"), readme_commands()
    for command in ("python main.py", "flask --app main run --debug --port $DEBUG_PORT"):
        assert command in doc
        assert any(command in c for c in commands), command


def test_env_example_has_every_port_a_laptop_needs():
    example = ENV_EXAMPLE.read_text(encoding="utf-8")
    for name in ("PORT", "JUPYTER_PORT", "DEBUG_PORT"):
        assert re.search(rf"^{name}=\d+$", example, re.MULTILINE), name


# ---- the slides' code, which teams copy


def test_the_slides_unpack_what_load_model_returns():
    """`load_model` returns (pipeline, metadata): a slide calling .predict on it would fail."""
    calls = [
        line for line in DECK.read_text(encoding="utf-8").splitlines() if "load_model(" in line
    ]
    assigned = [line for line in calls if "= load_model(" in line]  # tests/test_slide_code.py
    for line in assigned:
        assert re.match(r"^\s*\w+, \w+ = load_model\(", line), line


def test_the_slides_use_each_teams_own_ports():
    deck = DECK.read_text(encoding="utf-8")
    assert "flask --app main run --debug --port $DEBUG_PORT" in deck
    assert "--port 5001" not in deck and "$API_PORT" not in deck
