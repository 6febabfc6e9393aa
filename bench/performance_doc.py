"""Writing one benchmark's section of docs/PERFORMANCE.md, leaving the others as they are."""

import re
from pathlib import Path

PERFORMANCE = Path(__file__).resolve().parent.parent / "docs" / "PERFORMANCE.md"


def write_section(title: str, section: str) -> None:
    """Replace the section whose heading starts with `## {title}`, or add it at the end."""
    text = PERFORMANCE.read_text() if PERFORMANCE.exists() else "# Performance\n"
    pattern = re.compile(rf"^## {re.escape(title)}.*?(?=^## |\Z)", re.S | re.M)
    body = section.strip("\n") + "\n\n"
    if pattern.search(text):
        text = pattern.sub(lambda _: body, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + body
    PERFORMANCE.write_text(text.rstrip("\n") + "\n")
