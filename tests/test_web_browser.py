"""The leaderboard in a real headless Chromium, served by waitress over a real database."""

import contextlib
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from starter_helpers import free_port
from waitress.server import create_server
from web_helpers import XSS_NAME, make_game, store_results

from game_server.web.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def served(sqlite_url):
    """The app on a free loopback port over a game with teams; (base URL, engine)."""
    engine, _ = make_game(sqlite_url, names=("red", "blue", "green"), xss=True)
    store_results(engine, {"red": "correct", "blue": "wrong", "green": "failed"}, rounds=2)
    server = create_server(
        create_app({"DATABASE_URL": sqlite_url}), host="127.0.0.1", port=0, threads=4
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}", engine
    server.close()
    engine.dispose()


@pytest.fixture
def page():
    """A headless Chromium page (Debian's browser, never a downloaded one)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        yield page
        browser.close()


def wait_until(page, expression: str, timeout: float = 10.0) -> None:
    """Poll a JS expression until it is truthy (Playwright's wait_for_function needs eval,
    which the pages' Content-Security-Policy rightly forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(100)


def points_of(page, team: str) -> str:
    """The points cell of a team's row."""
    return page.locator("#board tr", has_text=team).locator("td.points").inner_text()


def test_leaderboard_updates_without_reload_and_escapes_names(served, page):
    base, engine = served
    dialogs, errors, outside = [], [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
    page.goto(base + "/")
    page.wait_for_selector("#board tr >> nth=3")
    assert page.locator("#board tr").count() == 4
    assert points_of(page, "red") == "2"
    xss_cell = page.locator("#board td.team", has_text="onerror")
    assert xss_cell.inner_text() == XSS_NAME
    assert page.locator("#board img").count() == 0
    wait_until(page, "document.querySelector('#chart .main-svg') !== null")
    page.evaluate("window.__marker = 'still here'")
    updates = page.evaluate("window.__boardUpdates")

    store_results(engine, {"red": "correct", "blue": "correct"}, rounds=3)
    wait_until(
        page,
        "[...document.querySelectorAll('#board tr')].some("
        "r => r.textContent.includes('red') && r.querySelector('td.points').textContent === '5')",
        timeout=5,
    )
    assert page.evaluate("window.__marker") == "still here"  # no navigation happened
    assert page.evaluate("window.__boardUpdates") > updates
    assert "+3" in page.locator("#board tr", has_text="red").locator("td.change").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "leaderboard.png"), full_page=True)
    assert dialogs == [] and outside == []
    assert [e for e in errors if "favicon" not in e] == []


def test_team_and_monitoring_pages_draw(served, page):
    base, _ = served
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (errors.append(d.message), d.dismiss()))
    page.goto(base + "/teams/green")
    page.wait_for_selector("#requests tr")
    assert "http_status" in page.locator("#requests").inner_text()
    wait_until(page, "document.querySelector('#failures .main-svg') !== null")
    page.goto(base + "/monitoring")
    wait_until(page, "document.querySelectorAll('.feature .js-plotly-plot').length === 14")
    assert "features drift" in page.locator("#summary").inner_text()
    page.goto(base + "/teams/" + XSS_NAME.replace(" ", "%20"))
    assert page.locator("h1.team-name").inner_text() == XSS_NAME
    page.wait_for_timeout(500)
    assert errors == []


def test_page_memory_stays_bounded(served, page):
    """Hundreds of updates: the JS heap after garbage collection does not keep growing."""
    base, engine = served
    page.goto(base + "/")
    wait_until(page, "window.__boardUpdates >= 1")
    cdp = page.context.new_cdp_session(page)
    cdp.send("HeapProfiler.enable")

    def heap_after_gc() -> float:
        cdp.send("HeapProfiler.collectGarbage")
        return cdp.send("Runtime.getHeapUsage")["usedSize"]

    # Drive 400 updates through the page's own update functions (polling would take
    # minutes): ranks change, points grow, the chart is redrawn with 300-point lines.
    drive = """async (n) => {
      const board = await (await fetch('/api/leaderboard')).json();
      const history = await (await fetch('/api/history')).json();
      const t0 = Date.now() / 1000;
      for (let i = 0; i < n; i++) {
        board.teams.forEach((t, k) => { t.points = (i * (k + 1)) % 97; });
        board.teams.sort((a, b) => b.points - a.points).forEach((t, k) => { t.rank = k + 1; });
        window.gameBoard.render(board);
        const line = Array.from({length: 300}, (_, j) => [t0 + j, (i + j) % 50]);
        Object.keys(history.teams).forEach((name) => { history.teams[name] = line; });
        history.oracle = line; history.baseline = line;
        window.gameBoard.drawChart(history);
        if (i % 20 === 0) await new Promise((r) => setTimeout(r, 0));
      }
    }"""
    page.evaluate(drive, 100)  # warm up (Plotly's caches, JIT)
    start = heap_after_gc()
    page.evaluate(drive, 400)
    end = heap_after_gc()
    page.evaluate(drive, 400)
    final = heap_after_gc()
    assert page.locator("#board tr").count() == 4  # rows reused, none piled up
    # Bounded: a second batch of 400 updates adds (almost) nothing over the first.
    assert final < end + 1_000_000 and end < start * 1.5 + 2_000_000, (start, end, final)


# Plotly reads its own markup in trace names. The first two names predate the name rule
# (':' is refused now), the third is a legal name today.
MARKUP_NAMES = (
    '<a href="https:evil.example">click me',
    '<span style="font-size:90px">',
    "big<br><b>news",
)


@pytest.fixture
def served_markup(sqlite_url, monkeypatch):
    """The app over a game whose teams are named in Plotly's markup; the base URL."""
    from game_server.play import teams

    monkeypatch.setattr(teams, "name_ok", lambda name: True)  # a database from before the rule
    engine, _ = make_game(sqlite_url, names=MARKUP_NAMES)
    store_results(engine, {n: "correct" for n in MARKUP_NAMES}, rounds=2)
    server = create_server(
        create_app({"DATABASE_URL": sqlite_url}), host="127.0.0.1", port=0, threads=4
    )
    threading.Thread(target=server.run, daemon=True).start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    engine.dispose()


def test_team_names_are_text_in_the_chart(served_markup, page):
    page.goto(served_markup + "/")
    wait_until(page, "document.querySelectorAll('#chart .legendtext').length === 5")
    legend = page.evaluate(
        "[...document.querySelectorAll('#chart .legendtext')].map(e => e.textContent)"
    )
    assert set(MARKUP_NAMES) <= set(legend)  # shown as typed, not as markup
    assert page.locator("#chart svg a").count() == 0  # no link
    assert page.locator('#chart svg [style*="font-size:90px"]').count() == 0  # no giant label
    assert page.locator("#chart svg tspan[style*='bold']").count() == 0


class HealthHandler(http.server.BaseHTTPRequestHandler):
    """A team API's health route, and nothing else."""

    def do_GET(self):  # noqa: N802 (the standard library's name)
        body = b'{"status": "ok"}'
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        """Quiet."""


def up_cell(page, team: str) -> str:
    """The text of a team's API cell on the leaderboard ('' before its row is drawn)."""
    return page.evaluate(
        """(team) => {
          const row = [...document.querySelectorAll('#board tr')]
            .find(r => r.querySelector('td.team').textContent === team);
          return row ? row.querySelector('td.up').textContent : '';
        }""",
        team,
    )


def wait_for_cell(page, team: str, start: str, timeout: float) -> str:
    """Poll the page's DOM until the team's API cell starts with `start`."""
    deadline = time.monotonic() + timeout
    while not (text := up_cell(page, team)).startswith(start):
        if time.monotonic() > deadline:
            raise AssertionError(f"{team}'s API cell is {text!r}, not {start!r}, after {timeout} s")
        page.wait_for_timeout(100)
    return text


def test_the_lobby_shows_a_team_up_within_5_s_of_its_api_starting_and_down_within_5_s(
    tmp_path, page
):
    """Issue 14's done-when: `game-server run` in the lobby, a team whose API comes and goes."""
    env = {**os.environ, "GAME_DATABASE_URL": f"sqlite:///{tmp_path / 'game.sqlite'}"}
    game_server = [sys.executable, "-m", "game_server"]
    api_port, web_port = free_port(), free_port()
    subprocess.run([*game_server, "init"], env=env, check=True, capture_output=True)
    subprocess.run(
        [
            *game_server,
            "teams",
            "add",
            "night-owls",
            "--url",
            f"http://127.0.0.1:{api_port}/predict",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    with open(tmp_path / "run.log", "w") as log:
        run = subprocess.Popen([*game_server, "run", "--port", str(web_port)], env=env, stderr=log)
    api = None
    try:
        base = f"http://127.0.0.1:{web_port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the web process starts in a few seconds
            with contextlib.suppress(OSError):
                urllib.request.urlopen(base + "/api/health", timeout=2)
                break
            time.sleep(0.2)
        page.goto(base + "/")
        assert wait_for_cell(page, "night-owls", "down", 30) == "down connect_error"

        api = http.server.ThreadingHTTPServer(("127.0.0.1", api_port), HealthHandler)
        threading.Thread(target=api.serve_forever, daemon=True).start()
        assert wait_for_cell(page, "night-owls", "up", 5) == "up"

        api.shutdown()
        api.server_close()
        api = None
        assert wait_for_cell(page, "night-owls", "down", 5) == "down connect_error"
        assert page.locator("#state").inner_text() == "lobby"
    finally:
        if api is not None:
            api.shutdown()
            api.server_close()
        run.send_signal(signal.SIGTERM)
        run.wait(30)
    assert run.returncode == 0
