"""The instructor's cheat sheet: one printable page made from docs/INSTRUCTOR.md.

    python scripts/cheatsheet.py [--out build] [--no-pdf]

The guide is the one source: the parts of it between a line `<!-- cheatsheet: TITLE -->`
and a line `<!-- /cheatsheet -->` go onto the sheet, in the guide's order, each under its
title. The script writes `cheatsheet.html` (A4, two columns) and, when the system's
Chromium is here, prints it to `cheatsheet.pdf` through Playwright.
"""

import argparse
import html
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "INSTRUCTOR.md"
OUT = ROOT / "build"
CHROMIUM = "/usr/bin/chromium"

START = re.compile(r"^<!-- cheatsheet: (.+?) -->$")
END = "<!-- /cheatsheet -->"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
@page {{ size: A4 landscape; margin: 6mm; }}
body {{ font: 6.8pt/1.22 system-ui, "DejaVu Sans", sans-serif; color: #111; margin: 0;
       columns: 2; column-gap: 7mm; }}
h1 {{ column-span: all; font-size: 11pt; margin: 0 0 1mm; }}
h1 small {{ font-size: 7pt; font-weight: normal; color: #777; margin-left: 3mm; }}
h2 {{ font-size: 8.5pt; margin: 1.8mm 0 0.6mm; color: #1c4f8a; break-after: avoid; }}
section {{ break-inside: avoid-column; }}
p {{ margin: 0.8mm 0; }}
pre {{ font-size: 6.1pt; line-height: 1.18; background: #f2f4f7; padding: 1.2mm 1.6mm;
      margin: 0.8mm 0; white-space: pre-wrap; overflow-wrap: anywhere; }}
code {{ font-family: "DejaVu Sans Mono", monospace; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; vertical-align: top; padding: 0.35mm 1mm;
         border-bottom: 0.4pt solid #c8cdd6; }}
th {{ color: #555; font-weight: 600; }}
</style>
</head>
<body>
<h1>{title}<small>made by <code>make cheatsheet</code> from docs/INSTRUCTOR.md:
the details are there</small></h1>
{sections}
</body>
</html>
"""


class CheatsheetError(ValueError):
    """The guide's markers do not pair up."""


def extract(guide: str) -> list[tuple[str, str]]:
    """The (title, Markdown) of every marked part of the guide, in order."""
    parts: list[tuple[str, str]] = []
    title: str | None = None
    lines: list[str] = []
    for number, line in enumerate(guide.splitlines(), start=1):
        start = START.match(line.strip())
        if start:
            if title is not None:
                raise CheatsheetError(f"line {number}: a cheatsheet part starts inside another")
            title, lines = start.group(1), []
        elif line.strip() == END:
            if title is None:
                raise CheatsheetError(f"line {number}: {END} without a start")
            parts.append((title, "\n".join(lines).strip()))
            title = None
        elif title is not None:
            lines.append(line)
    if title is not None:
        raise CheatsheetError(f"the part {title!r} has no {END}")
    if not parts:
        raise CheatsheetError("no part of the guide is marked <!-- cheatsheet: TITLE -->")
    return parts


def render(parts: list[tuple[str, str]], title: str = "Instructor's cheat sheet") -> str:
    """The HTML page: each part's Markdown rendered under its title."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    sections = "\n".join(
        f"<section><h2>{html.escape(name)}</h2>\n{md.render(text)}</section>"
        for name, text in parts
    )
    return PAGE.format(title=html.escape(title), sections=sections)


def print_pdf(page: Path, pdf: Path) -> int:
    """Print the page to a PDF with the system's Chromium; the number of pages."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            tab = browser.new_page()
            tab.goto(page.as_uri(), wait_until="load")
            tab.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
        finally:
            browser.close()
    return pdf_pages(pdf.read_bytes())


def pdf_pages(data: bytes) -> int:
    """How many pages a PDF has: the largest /Count of its page tree."""
    return max(int(n) for n in re.findall(rb"/Count (\d+)", data))


def main(argv: list[str] | None = None) -> int:
    """Write the HTML sheet (and the PDF when Chromium is here); one-line errors."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder")
    parser.add_argument("--no-pdf", action="store_true", help="skip the PDF")
    args = parser.parse_args(argv)
    try:
        page = args.out / "cheatsheet.html"
        args.out.mkdir(parents=True, exist_ok=True)
        page.write_text(render(extract(GUIDE.read_text(encoding="utf-8"))), encoding="utf-8")
        print(f"cheatsheet: wrote {page}")
        if args.no_pdf:
            return 0
        if not Path(CHROMIUM).exists():
            print(f"cheatsheet: no PDF ({CHROMIUM} not found)")
            return 0
        pages = print_pdf(page, args.out / "cheatsheet.pdf")
        print(f"cheatsheet: printed {args.out / 'cheatsheet.pdf'} ({pages} page(s))")
        if pages != 1:
            print("cheatsheet: more than one page: shorten the marked parts", file=sys.stderr)
            return 1
    except (CheatsheetError, OSError) as exc:
        print(f"cheatsheet: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
