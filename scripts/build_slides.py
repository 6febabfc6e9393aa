"""Build the workshop deck: slides/deck.md -> slides/build/index.html (static, works offline).

reveal.js is installed from the npm registry at the version pinned in slides/package.json
(and package-lock.json), never from a CDN and never committed. The Markdown is embedded in
the page, so the deck opens from a web server and from a plain file:// URL alike.

    python scripts/build_slides.py            # HTML deck, plus a PDF handout when Chromium is here
    python scripts/build_slides.py --no-pdf   # HTML deck only

The deck opened as `index.html?short` is the talk: the slides marked optional
(`<!-- .slide: class="optional" -->`) are left out, and the speaker view paces the talk's
minutes (the plan in the first slides' speaker notes). Plain `index.html` shows every slide.
"""

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLIDES = ROOT / "slides"
DECK = SLIDES / "deck.md"
FIGURES = SLIDES / "figures"
BUILD = SLIDES / "build"
REVEAL = SLIDES / "node_modules" / "reveal.js"
CHROMIUM = "/usr/bin/chromium"

# The deck's separators: a line "---" starts the next slide, "----" the next slide below it.
SEPARATOR = r"^---$"
SEPARATOR_VERTICAL = r"^----$"
SEPARATOR_NOTES = r"^Note:"
# A slide the short talk leaves out carries this comment (reveal.js gives the slide the class).
OPTIONAL = '<!-- .slide: class="optional" -->'
# A slide in two versions, one per starter level: `?exercises` shows the exercise level's,
# otherwise the complete level's (docs/INSTRUCTOR.md, "The starter's two levels").
LEVEL_COMPLETE = '<!-- .slide: class="level-complete" -->'
LEVEL_EXERCISES = '<!-- .slide: class="level-exercises" -->'
MARKERS = {OPTIONAL, LEVEL_COMPLETE, LEVEL_EXERCISES}
# The talk's length, from the plan in the speaker notes ("... talk 40 min, ...").
TALK = re.compile(r"\btalk (\d+) min\b")

# The parts of reveal.js the deck uses, copied from node_modules/reveal.js/dist.
REVEAL_FILES = [
    "reset.css",
    "reveal.css",
    "reveal.js",
    "theme/white.css",
    "plugin/markdown.js",
    "plugin/notes.js",
    "plugin/highlight.js",
    "plugin/highlight/monokai.css",
]

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title}</title>
<link rel="stylesheet" href="reveal/reset.css">
<link rel="stylesheet" href="reveal/reveal.css">
<link rel="stylesheet" href="reveal/theme/white.css">
<link rel="stylesheet" href="reveal/plugin/highlight/monokai.css">
<link rel="stylesheet" href="deck.css">
</head>
<body>
<div class="reveal">
<div class="slides">
<section data-markdown data-separator="{sep}" data-separator-vertical="{vsep}"
         data-separator-notes="{nsep}">
<textarea data-template>
{markdown}
</textarea>
</section>
</div>
</div>
<script src="reveal/reveal.js"></script>
<script src="reveal/plugin/markdown.js"></script>
<script src="reveal/plugin/notes.js"></script>
<script src="reveal/plugin/highlight.js"></script>
<script>
// ?short: the talk. Optional slides become hidden ones, which reveal.js removes at start.
// ?exercises: the exercise level's version of a slide in two, else the complete level's.
const PARAMS = new URLSearchParams(location.search);
const SHORT = PARAMS.has("short");
const template = document.querySelector(".slides textarea[data-template]");
if (SHORT) {{
  template.textContent = template.textContent.replaceAll({optional}, {hidden});
}}
const OTHER_LEVEL = PARAMS.has("exercises") ? {level_complete} : {level_exercises};
template.textContent = template.textContent.replaceAll(OTHER_LEVEL[0], OTHER_LEVEL[1]);
Reveal.initialize({{
  hash: true,
  slideNumber: "c/t",
  width: 1280,
  height: 760,
  pdfSeparateFragments: false,
  totalTime: SHORT ? {talk_seconds} : null,  // the speaker view's pacing, for the talk only
  plugins: [RevealMarkdown, RevealHighlight, RevealNotes],
}});
</script>
</body>
</html>
"""


class BuildError(RuntimeError):
    """A one-line reason why the deck could not be built."""


def pinned_reveal_version() -> str:
    """The reveal.js version slides/package.json pins."""
    return json.loads((SLIDES / "package.json").read_text())["dependencies"]["reveal.js"]


def installed_reveal_version() -> str | None:
    """The version of reveal.js in slides/node_modules, or None when it is not installed."""
    manifest = REVEAL / "package.json"
    if not manifest.exists():
        return None
    return json.loads(manifest.read_text())["version"]


def install_reveal() -> None:
    """Install the pinned reveal.js with `npm ci` unless it is already there."""
    if installed_reveal_version() == pinned_reveal_version():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("npm is not installed: install Node.js 18+ (Debian: apt-get install npm)")
    cmd = [npm, "ci", "--prefix", str(SLIDES), "--no-audit", "--no-fund", "--loglevel=error"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as exc:
        raise BuildError(
            "npm ci took more than 10 minutes: is the npm registry reachable?"
        ) from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BuildError(f"npm ci failed (exit {done.returncode}): {last}")
    if installed_reveal_version() != pinned_reveal_version():
        raise BuildError(f"npm ci did not install reveal.js {pinned_reveal_version()}")


def deck_title(markdown: str) -> str:
    """The deck's title: its first Markdown heading."""
    for line in markdown.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return "Slides"


def talk_minutes(markdown: str) -> int | None:
    """The talk's minutes in the plan of the speaker notes, or None when they give none."""
    found = TALK.search(markdown)
    return int(found.group(1)) if found else None


def _js_pair(marker: str) -> str:
    """[marker, the marker of a hidden slide] as a JavaScript array ("<" escaped)."""
    hidden = marker.replace('" -->', '" data-visibility="hidden" -->')
    return json.dumps([marker, hidden]).replace("<", "\\u003c")


def build_html(markdown: str) -> str:
    """The index.html page that renders `markdown` with reveal.js's markdown plugin."""
    minutes = talk_minutes(markdown)
    hidden = OPTIONAL.replace('"optional"', '"optional" data-visibility="hidden"')
    return PAGE.format(
        title=html.escape(deck_title(markdown)),
        sep=SEPARATOR,
        vsep=SEPARATOR_VERTICAL,
        nsep=SEPARATOR_NOTES,
        # JSON strings are valid JavaScript; "<" escaped so no "</script>" can end the script.
        optional=json.dumps(OPTIONAL).replace("<", "\\u003c"),
        hidden=json.dumps(hidden).replace("<", "\\u003c"),
        level_complete=_js_pair(LEVEL_COMPLETE),
        level_exercises=_js_pair(LEVEL_EXERCISES),
        talk_seconds="null" if minutes is None else minutes * 60,
        # A textarea holds raw text: escaping & and < keeps "</textarea>" in a code sample
        # from ending it, and the browser decodes them back before the plugin reads it.
        markdown=html.escape(markdown, quote=False),
    )


def build(out: Path = BUILD) -> Path:
    """Build the static deck into `out` (index.html, reveal/, figures/) and return index.html."""
    install_reveal()
    if out.exists():
        # Only ever delete an earlier build, never a folder given by mistake.
        if any(out.iterdir()) and not (out / "index.html").exists():
            raise BuildError(f"{out} is not empty and holds no deck: choose another --out")
        shutil.rmtree(out)
    for name in REVEAL_FILES:
        target = out / "reveal" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REVEAL / "dist" / name, target)
    shutil.copytree(FIGURES, out / "figures")
    shutil.copyfile(SLIDES / "deck.css", out / "deck.css")
    index = out / "index.html"
    index.write_text(build_html(DECK.read_text(encoding="utf-8")), encoding="utf-8")
    return index


def print_pdf(index: Path, pdf: Path, chromium: str = CHROMIUM) -> Path:
    """Print the deck to a PDF handout: reveal.js's ?print-pdf view in headless Chromium.

    Playwright drives the system's Chromium so the page is printed only once reveal.js has
    laid out every slide (Chromium's own --print-to-pdf does not wait for that).
    """
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        raise BuildError("the PDF handout needs playwright (pip install playwright)") from exc
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=args)
        try:
            page = browser.new_page()
            # reveal.js announces "pdf-ready" once every slide sits on its own page.
            page.add_init_script(
                "addEventListener('pdf-ready', () => { window.pdfReady = true }, true)"
            )
            page.goto(index.as_uri() + "?print-pdf", wait_until="load")
            page.wait_for_function("window.pdfReady === true", timeout=30_000)
            page.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
        except Error as exc:
            reason = exc.message.splitlines()[0]
            raise BuildError(f"chromium could not print the PDF: {reason}") from exc
        finally:
            browser.close()
    return pdf


def main(argv: list[str] | None = None) -> int:
    """Build the deck (and the PDF handout when asked and possible); one-line errors."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BUILD, help="output folder")
    parser.add_argument("--no-pdf", action="store_true", help="skip the PDF handout")
    args = parser.parse_args(argv)
    try:
        index = build(args.out)
        print(f"slides: built {index}")
        if args.no_pdf:
            return 0
        if not Path(CHROMIUM).exists():
            print(f"slides: no PDF handout ({CHROMIUM} not found)")
            return 0
        pdf = print_pdf(index, args.out / "handout.pdf")
        print(f"slides: printed {pdf}")
    except (BuildError, OSError) as exc:
        print(f"slides: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
