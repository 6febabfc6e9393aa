"""Write docs/SETTINGS.md from the one declaration of the settings (`make settings-doc`).

    python scripts/settings_doc.py [--check]

`--check` writes nothing and exits 1 when the page is not the rendering (as
tests/test_settings.py does).
"""

import sys
from pathlib import Path

from game_server.common import settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "SETTINGS.md"


def main(argv: list[str]) -> int:
    """Write the page, or with --check say whether it is up to date."""
    text = settings.markdown()
    if "--check" in argv:
        current = DOC.read_text() if DOC.exists() else ""
        if current != text:
            print(
                f"{DOC} is not the rendering of game_server/common/settings.py: make settings-doc"
            )
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
