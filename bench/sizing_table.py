"""docs/INSTRUCTOR.md's sizing table, rendered from game_server/common/sizing.py.

`make bench-rehearsal` writes the cost per team (MEASURED) and `make bench-capacity` the
peak's bursts (BURST) into sizing.py; each then rewrites the table, so the guide always
shows what the two latest runs measured (tests/test_sizing.py checks they agree).
"""

import importlib
import re
from pathlib import Path

from game_server.common import sizing

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTOR = ROOT / "docs" / "INSTRUCTOR.md"
SIZING = ROOT / "game_server" / "common" / "sizing.py"
TABLE = re.compile(
    r"(<!-- sizing table: make bench-rehearsal -->\n).*?(<!-- /sizing table -->)", re.S
)


def write() -> None:
    """Rewrite the guide's table from sizing.py as it is on disk now."""
    importlib.reload(sizing)
    guide = INSTRUCTOR.read_text()
    INSTRUCTOR.write_text(TABLE.sub(lambda m: m[1] + sizing.table() + m[2], guide, count=1))


def write_burst(apis: int, cores: int) -> None:
    """The capacity bench's result into sizing.py (BURST), then the table."""
    text = re.sub(
        r"^BURST = Burst\(.*\)$",
        f"BURST = Burst(apis={apis}, cores={cores})",
        SIZING.read_text(),
        count=1,
        flags=re.M,
    )
    SIZING.write_text(text)
    write()
