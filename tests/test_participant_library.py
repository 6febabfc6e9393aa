"""A team adds a library as participant_starter/README.md says ("Adding a library"): into
its home with `pip install --target`, on the path with PYTHONPATH, the workshop's venv
untouched. Run here with the kit's venv and a local package instead of one from PyPI."""

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "participant_starter" / "README.md"


def library_commands() -> list[str]:
    """The commands of the README's "Adding a library" block."""
    section = README.read_text(encoding="utf-8").split("## Adding a library", 1)[1]
    block = re.search(r"^```text\n(.*?)^```$", section, re.MULTILINE | re.DOTALL).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_a_team_adds_a_library_in_its_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    package = tmp_path / "teamlib-1.0-py3-none-any.whl"  # a wheel: a zip pip installs
    with zipfile.ZipFile(package, "w") as wheel:
        wheel.writestr("teamlib/__init__.py", "ANSWER = 42\n")
        info = "teamlib-1.0.dist-info"
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: teamlib\nVersion: 1.0\n")
        wheel.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{info}/RECORD", "")
    install, profile, export = library_commands()
    assert install.startswith("python -m pip install --no-deps --target ~/pylib ")
    script = "\n".join(
        [
            "set -e",
            install.replace("lightgbm", f"--no-index {package}").replace(
                "python ", f"{sys.executable} ", 1
            ),
            profile,
            export,
            f'{sys.executable} -c "import teamlib, sklearn; print(teamlib.ANSWER)"',
        ]
    )
    env = {"HOME": str(home), "PATH": os.environ["PATH"]}
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "42"
    assert (home / "pylib" / "teamlib" / "__init__.py").is_file()
    assert "export PYTHONPATH=~/pylib" in (home / ".profile").read_text()
    assert not list(Path(sys.prefix).glob("lib/python*/site-packages/teamlib*"))  # untouched
