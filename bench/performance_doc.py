"""Writing one benchmark's section of docs/PERFORMANCE.md (the others left as they are), and
the one-line description of the machine each section names.
"""

import os
import platform
import re
from pathlib import Path

import aiohttp

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


def machine() -> str:
    """A one-line description of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}"
    return f"{os.cpu_count()} cores, {cpu}; {versions}"
