"""The workshop deck: its Markdown, its figures, and the built HTML deck in a real browser."""

import functools
import http.server
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import require

ROOT = Path(__file__).resolve().parent.parent
SLIDES = ROOT / "slides"
DECK = SLIDES / "deck.md"
FIGURES = SLIDES / "figures"
SCRIPTS = ROOT / "scripts"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
MAX_FIGURE_BYTES = 300 * 1024

# The deck's columns (horizontal slides), in order: the first heading of each.
SECTIONS = [
    "Getting your model in production",
    "What is production?",
    "DTAP, and why data science differs",
    "Confidentiality, integrity, availability",
    "Batch or on demand?",
    "Serving a model with Flask",
    "Saving and loading models",
    "Production code",
    "Monitoring and model degradation",
    "Other pitfalls",
    "The game",
    "How to play",
    "How to play",  # the exercise level's version (?exercises)
    "The starter",
    "Connecting",
    "Take-aways",
]
# A real screenshot of the game's monitoring page, taken by scripts/screenshot_monitoring.py
# once that page exists; every other figure is drawn by the figure scripts.
SCREENSHOTS = {"monitoring.png"}


def load_script(name: str):
    """Import one of the scripts/ files as a module."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_slides = load_script("build_slides")


def split_deck(text: str) -> list[list[str]]:
    """The deck as columns of slides, split with the separators the HTML deck uses."""
    columns = re.split(build_slides.SEPARATOR, text, flags=re.MULTILINE)
    return [re.split(build_slides.SEPARATOR_VERTICAL, c, flags=re.MULTILINE) for c in columns]


def first_heading(slide: str) -> str | None:
    """The text of a slide's first Markdown heading, or None."""
    found = re.search(r"^#{1,3} (.+)$", slide, flags=re.MULTILINE)
    return found.group(1).strip() if found else None


def deck_images() -> list[str]:
    """Every image path the deck references, relative to slides/."""
    text = DECK.read_text(encoding="utf-8")
    return re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text) + re.findall(
        r'<img[^>]+src="([^"]+)"', text
    )


def optional(slide: str) -> bool:
    """Whether the short talk (index.html?short) leaves this slide out."""
    return build_slides.OPTIONAL in slide


def other_level(slide: str, exercises: bool = False) -> bool:
    """Whether the deck at a level (`?exercises`, or the complete one) leaves this slide out."""
    return (build_slides.LEVEL_COMPLETE if exercises else build_slides.LEVEL_EXERCISES) in slide


def test_deck_splits_into_the_expected_slides():
    """Columns come in the planned order, 40 to 64 slides, each with a heading."""
    columns = split_deck(DECK.read_text(encoding="utf-8"))
    assert [first_heading(c[0]) for c in columns] == SECTIONS
    slides = [s for c in columns for s in c]
    assert 40 <= len(slides) <= 64, f"{len(slides)} slides"
    for slide in slides:
        assert first_heading(slide), f"a slide without a heading: {slide[:80]!r}"
        # An unbalanced fence means a separator fell inside a code block and cut it in two.
        assert len(re.findall(r"^```", slide, flags=re.MULTILINE)) % 2 == 0, slide[:80]
    notes = [s for s in slides if re.search(build_slides.SEPARATOR_NOTES, s, re.MULTILINE)]
    assert len(notes) >= 10, "speaker notes on at least ten slides"


def test_deck_covers_the_game_contract():
    """The serving slides state the real contract of the game."""
    text = DECK.read_text(encoding="utf-8")
    for fact in (
        "POST /predict",
        '"features"',
        '"pred"',
        "1 second",
        "64 KiB",
        "/api/feedback",
        "Authorization: Bearer",
        "+1",
        "-1",
    ):
        assert fact in text, fact


@pytest.mark.parametrize("image", deck_images())
def test_every_image_the_deck_references_exists(image):
    """Each referenced image is a file in slides/, small enough to ship."""
    path = SLIDES / image
    assert path.is_file(), f"{image} is missing"
    assert path.stat().st_size < MAX_FIGURE_BYTES, f"{image} is {path.stat().st_size} bytes"


def test_the_deck_references_images_only_under_figures():
    """The build copies slides/figures only, so images must live there."""
    images = deck_images()
    assert images
    assert all(image.startswith("figures/") for image in images), images


@pytest.mark.slow
def test_figure_scripts_draw_every_figure_the_deck_uses(tmp_path):
    """The figure scripts write each drawn figure of the deck, as the committed copy's size."""
    from PIL import Image

    for script in ("figures.py", "population_shift.py"):
        done = subprocess.run(
            [sys.executable, str(SCRIPTS / script), "--out", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    drawn = {Path(image).name for image in deck_images()} - SCREENSHOTS
    for name in drawn:
        new = tmp_path / name
        assert new.is_file(), f"no script draws {name}"
        assert new.stat().st_size < MAX_FIGURE_BYTES
        with Image.open(new) as fresh, Image.open(FIGURES / name) as committed:
            assert fresh.size == committed.size, f"{name}: run `make figures` and commit"
    with Image.open(tmp_path / "population_shift.gif") as gif:
        assert gif.n_frames > 5


def test_diagrams_are_reproducible(tmp_path):
    """Drawing a seeded figure twice gives the same bytes."""
    figures = load_script("figures")
    first = figures.draw_degradation(tmp_path).read_bytes()
    second = figures.draw_degradation(tmp_path).read_bytes()
    assert first == second


def test_psi_is_zero_for_equal_histograms_and_grows_with_shift():
    """The drift statistic shown in the animation behaves as a PSI should."""
    import numpy as np

    shift = load_script("population_shift")
    base = np.array([10, 20, 40, 20, 10])
    assert shift.psi(base, base * 3) == pytest.approx(0.0)
    small = shift.psi(base, np.array([12, 22, 38, 18, 10]))
    large = shift.psi(base, np.array([40, 30, 20, 8, 2]))
    assert 0 < small < 0.1 < 0.25 < large


def test_markdown_is_embedded_safely():
    """A code sample holding </textarea> cannot end the embedded Markdown early."""
    page = build_slides.build_html("# Title\n\n```html\n<textarea></textarea>\n```\n")
    assert page.count("</textarea>") == 1
    assert "&lt;/textarea&gt;" in page
    assert "<title>Title</title>" in page


def test_make_slides_without_npm_fails_with_one_line(tmp_path):
    """`make slides` on a machine without npm says so in one line and fails."""
    make = shutil.which("make")
    assert make, "make is needed to run the project's commands"
    done = subprocess.run(
        [make, "-s", "slides"],
        cwd=ROOT,
        env={**os.environ, "PATH": str(tmp_path)},  # an empty PATH: no npm
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    output = (done.stdout + done.stderr).strip().splitlines()
    assert (
        output[0] == "make slides: npm is not installed (Node.js 18+; Debian: apt-get install npm)"
    )


def test_build_without_npm_and_reveal_is_a_clear_error(monkeypatch, tmp_path):
    """The build script itself refuses with a one-line reason when it cannot get reveal.js."""
    monkeypatch.setattr(build_slides, "REVEAL", tmp_path / "reveal.js")
    monkeypatch.setattr(build_slides.shutil, "which", lambda name: None)
    with pytest.raises(build_slides.BuildError, match="npm is not installed"):
        build_slides.install_reveal()


@pytest.fixture(scope="module")
def built_deck(tmp_path_factory) -> Path:
    """The deck built once into a temporary folder (installs reveal.js with npm if needed)."""
    if shutil.which("npm") is None and build_slides.installed_reveal_version() is None:
        require("npm", "no `npm` on PATH to install reveal.js (apt-get install npm)")
    out = tmp_path_factory.mktemp("deck") / "build"
    return build_slides.build(out)


@pytest.fixture
def deck_server(built_deck):
    """A static web server on a free loopback port serving the built deck."""
    handler = functools.partial(QuietHandler, directory=str(built_deck.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file handler that keeps the test output clean."""

    def log_message(self, format, *args):
        """Do not print one line per request."""


def open_deck(url: str, allowed_prefix: str, screenshot: Path | None = None) -> dict:
    """Open the deck in headless Chromium and report requests, failures and what it shows."""
    from playwright.sync_api import sync_playwright

    missing = {name for name in SCREENSHOTS if not (FIGURES / name).exists()}
    failed, outside = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 760})

            def on_failed(request):
                # A screenshot not taken yet is reported by its own (xfail) test above.
                if Path(request.url).name not in missing:
                    failed.append(f"{request.url} {request.failure}")

            page.on("requestfailed", on_failed)
            page.on(
                "request",
                lambda r: None if r.url.startswith(allowed_prefix) else outside.append(r.url),
            )
            page.goto(url, wait_until="load")
            page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=15_000)
            if screenshot:
                screenshot.parent.mkdir(exist_ok=True)
                page.screenshot(path=str(screenshot))
            shown = page.evaluate(
                """() => ({
                    total: Reveal.getTotalSlides(),
                    title: document.querySelector('.slides section.present h1')?.textContent,
                    images: [...document.querySelectorAll('.slides img')]
                        .map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]),
                    code: document.querySelectorAll('.slides pre code.hljs').length,
                    notes: document.querySelectorAll('.slides aside.notes').length,
                    fragments: document.querySelectorAll('.slides .fragment').length,
                    pace: Reveal.getConfig().totalTime,
                })"""
            )
        finally:
            browser.close()
    return {"failed": failed, "outside": outside, **shown}


def expected_slide_count() -> int:
    """How many slides the deck shows at the complete level (the exercise level's own
    version of a slide left out)."""
    slides = [s for c in split_deck(DECK.read_text(encoding="utf-8")) for s in c]
    return sum(1 for slide in slides if not other_level(slide))


@pytest.mark.browser
@pytest.mark.slow
def test_built_deck_opens_offline_over_http(deck_server):
    """Served statically, the deck loads with no failed or outside request; title screenshot."""
    shot = ARTIFACTS / "slides-title.png"
    shot.unlink(missing_ok=True)
    seen = open_deck(deck_server + "/index.html", deck_server + "/", screenshot=shot)
    assert seen["failed"] == []
    assert seen["outside"] == []
    assert seen["total"] == expected_slide_count()
    assert seen["title"] == SECTIONS[0]
    assert seen["code"] > 10, "code blocks are highlighted"
    assert seen["notes"] >= 10, "speaker notes are separated from the slides"
    assert seen["fragments"] > 20
    for src, loaded in seen["images"]:
        if Path(src).name not in SCREENSHOTS:
            assert loaded, f"{src} did not load"
    assert shot.stat().st_size > 10_000


@pytest.mark.browser
@pytest.mark.slow
def test_built_deck_opens_from_a_file(built_deck):
    """Opened as a plain file (a laptop without a server), the deck works the same."""
    seen = open_deck(built_deck.as_uri(), "file://")
    assert seen["failed"] == []
    assert seen["outside"] == []
    assert seen["total"] == expected_slide_count()


@pytest.mark.browser
@pytest.mark.slow
def test_pdf_handout_has_a_page_per_slide(built_deck, tmp_path):
    """Chromium prints the deck to a PDF handout, one page per slide."""
    pdf = build_slides.print_pdf(built_deck, tmp_path / "handout.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    # The page tree's root holds the total: the largest /Count in the file.
    pages = max(int(n) for n in re.findall(rb"/Count (\d+)", data))
    assert pages == expected_slide_count()


@pytest.fixture
def game_pages(sqlite_url):
    """The game's web pages on a free loopback port, over a game with a few scored rounds."""
    from waitress.server import create_server
    from web_helpers import make_game, store_results

    from game_server.web.app import create_app

    engine, _ = make_game(sqlite_url)
    store_results(engine, {"red": "correct", "blue": "wrong"}, rounds=30)
    app = create_app({"DATABASE_URL": sqlite_url})
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    engine.dispose()


@pytest.mark.browser
@pytest.mark.slow
def test_screenshot_script_shoots_the_monitoring_page_light_and_large(game_pages, tmp_path):
    """The monitoring page in the light theme, cropped to the two features shown side by side."""
    from PIL import Image

    script = load_script("screenshot_monitoring")
    out = tmp_path / "page.png"
    code = script.main([game_pages + "/monitoring", "--out", str(out), "--wait", "0.5"])
    assert code == 0
    with Image.open(out) as image:
        width, height = image.size
        # Cropped to one row of two cards: wider than tall, less wide than the page.
        assert height < width < script.WIDTH * script.SCALE
        assert width > script.WIDTH * script.SCALE * 0.8
        corner = image.convert("RGB").getpixel((2, 2))
    assert min(corner) > 200, f"the light theme's background, not {corner}"
    assert out.stat().st_size < MAX_FIGURE_BYTES


@pytest.mark.browser
def test_screenshot_script_names_a_feature_the_page_lacks(game_pages, tmp_path, capsys):
    """Asking for a feature the page does not show is a one-line error, and no file."""
    script = load_script("screenshot_monitoring")
    out = tmp_path / "page.png"
    argv = [game_pages + "/monitoring", "--out", str(out), "--features", "age,shoe_size"]
    assert script.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("screenshot: ") and "shoe_size" in err and "\n" not in err
    assert not out.exists()


@pytest.mark.browser
def test_screenshot_script_reports_a_missing_page(deck_server, tmp_path, capsys):
    """A page that is not there gives exit 1 and a one-line reason, and no file."""
    script = load_script("screenshot_monitoring")
    out = tmp_path / "page.png"
    assert script.main([deck_server + "/no-such-page", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("screenshot: ") and "404" in err and "\n" not in err
    assert not out.exists()


@pytest.mark.browser
@pytest.mark.slow
def test_short_talk_leaves_out_the_optional_slides(built_deck):
    """index.html?short shows only the slides not marked optional, and paces the talk."""
    slides = [s for c in split_deck(DECK.read_text(encoding="utf-8")) for s in c]
    talk = [s for s in slides if not optional(s) and not other_level(s)]
    assert 0 < len(talk) < len(slides)
    seen = open_deck(built_deck.as_uri() + "?short", "file://")
    assert seen["failed"] == [] and seen["outside"] == []
    assert seen["total"] == len(talk)
    assert seen["title"] == SECTIONS[0]
    assert seen["pace"] == build_slides.talk_minutes(DECK.read_text(encoding="utf-8")) * 60
    full = open_deck(built_deck.as_uri(), "file://")
    assert full["total"] == expected_slide_count() and full["pace"] is None
    # At the exercise level the same number of slides: its own set-up slide instead.
    exercises = [s for s in slides if not optional(s) and not other_level(s, exercises=True)]
    assert len(exercises) == len(talk) and exercises != talk
    seen = open_deck(built_deck.as_uri() + "?short&exercises", "file://")
    assert seen["total"] == len(exercises)


def test_build_never_deletes_a_folder_that_is_not_a_deck(monkeypatch, tmp_path):
    """Given a wrong --out holding other files, the build refuses and deletes nothing."""
    monkeypatch.setattr(build_slides, "install_reveal", lambda: None)
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    with pytest.raises(build_slides.BuildError, match="holds no deck"):
        build_slides.build(tmp_path)
    assert keep.read_text() == "mine"


def test_dtap_has_one_definition_of_each_step():
    """Every slide that defines a DTAP step starts it with the same words."""
    text = DECK.read_text(encoding="utf-8")
    for step in ("Develop", "Test", "Acceptance", "Production"):
        definitions = re.findall(rf"^- \*\*{step}\*\*: ([^,:;]+)", text, flags=re.MULTILINE)
        assert len(definitions) == 2, step
        if step == "Acceptance":
            assert set(definitions) == {"a shadow copy of production"}, definitions
