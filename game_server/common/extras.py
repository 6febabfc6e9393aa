"""The optional parts of the install (pyproject.toml's extras) and the one-line hint when
one is missing.

The game itself (`init`, `run`, `web`, `teams`, `doctor`, ...) needs only the core
dependencies: the image and the game's server install nothing more. The demo's bot teams
train and serve the participant starter (scikit-learn, joblib, python-dotenv, requests);
`users` and `rehearse` log in over SSH (paramiko). Their commands call `require` first, so
a core install says which extra to add instead of printing a traceback, and their modules
import these libraries only when they run (tests/test_extras.py runs the core commands
with every other library unimportable).
"""

import importlib.util

import click

# Each extra's import names; tests/test_dependencies.py checks them against pyproject.toml.
MODULES = {
    "demo": ("sklearn", "joblib", "dotenv", "requests"),
    "accounts": ("paramiko",),
}


def missing(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here."""
    absent = []
    for name in MODULES[extra]:
        try:
            found = importlib.util.find_spec(name) is not None
        except ImportError:  # a finder that refuses the name, as a broken install does
            found = False
        if not found:
            absent.append(name)
    return absent


def require(extra: str, command: str) -> None:
    """Stop `command` with a one-line error naming `extra` when its libraries are missing."""
    if missing(extra):
        raise click.ClickException(
            f"{command} needs the {extra} extra: pip install -c constraints.txt '.[{extra}]' "
            "in the game's checkout (make install has every extra)"
        )
