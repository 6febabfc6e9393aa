"""Take the deck's screenshot of the game's monitoring page with headless Chromium.

    python scripts/screenshot_monitoring.py --demo   # plays a short demo game first (make figures)
    python scripts/screenshot_monitoring.py http://127.0.0.1:8000/monitoring   # a running game

The page is shown as a projector needs it: the light theme, two features side by side
(`--features`, one that drifts and one that does not), larger fonts, and cropped to them.
`--demo` plays the `workshop` game compressed to two minutes with one bot team
(`game-server demo`), shoots once the population shift and the peak are over, and stops the
demo. It uses the system's Chromium (Debian's `chromium`) through Playwright and never
downloads a browser.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "slides" / "figures" / "monitoring.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
]
FEATURES = ("age", "loan_purpose")  # the applicants got younger; their loans' purposes did not
WIDTH, SCALE = 1280, 1.5  # CSS pixels across, and device pixels per CSS pixel
DEMO_SECONDS = 120  # the workshop game compressed: the shift ends at 64 s, the peak at 80 s
DEMO_TIMEOUT = 300.0

# Light theme before the page paints (theme.js reads it), as the ◐ button would remember it.
LIGHT = "try { localStorage.setItem('game-theme', 'light') } catch (e) {}"

# Show only `features`, side by side, with larger text; Plotly redraws with larger fonts too.
ENLARGE = """features => {
  const style = document.createElement("style");
  style.textContent = `
    .features { grid-template-columns: repeat(${features.length}, 1fr) !important; }
    .feature h3 { font-size: 1.8rem; align-items: center; }
    .feature .badge { font-size: 1.2rem; line-height: 1.3; padding: 0.25rem 0.8rem; }
    .feature .stat { font-size: 1rem; }
    .feature .chart { height: 21rem; }
    .summary { font-size: 1.25rem; }`;
  document.head.appendChild(style);
  const names = [];
  for (const box of document.querySelectorAll(".feature")) {
    const name = box.querySelector("h3 span").textContent;
    names.push(name);
    box.style.display = features.includes(name) ? "" : "none";
    box.style.order = String(features.indexOf(name));
  }
  const missing = features.filter(f => !names.includes(f));
  if (missing.length) return "not on the page: " + missing.join(", ");
  const big = {"font.size": 22, "legend.font.size": 20, "legend.y": 1.16,
               "xaxis.tickfont.size": 17, "yaxis.tickfont.size": 17,
               "margin.l": 60, "margin.t": 10, "margin.b": 80};
  const react = Plotly.react;
  Plotly.react = (el, data, layout, config) => react(el, data, layout, config)
    .then(() => Plotly.relayout(el, big));
  for (const el of document.querySelectorAll(".feature .js-plotly-plot")) {
    Plotly.relayout(el, big);
    Plotly.Plots.resize(el);
  }
  return "";
}"""

# The rectangle around the summary line and the features shown (CSS pixels).
CLIP = """() => {
  const shown = [...document.querySelectorAll(".feature")].filter(b => b.style.display !== "none");
  const boxes = [document.getElementById("summary"), ...shown];
  const rects = boxes.map(b => b.getBoundingClientRect());
  const pad = 12;
  const x = Math.max(0, Math.min(...rects.map(r => r.left)) - pad);
  const y = Math.max(0, Math.min(...rects.map(r => r.top)) - pad);
  return {x: x, y: y,
          width: Math.max(...rects.map(r => r.right)) + pad - x,
          height: Math.max(...rects.map(r => r.bottom)) + pad - y};
}"""


def screenshot(url: str, out: Path, features: Sequence[str] = FEATURES, wait: float = 2.0) -> Path:
    """Open the monitoring page, show `features` large in the light theme, save the crop."""
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # bypass_csp: the page's policy rightly refuses inline styles; this is our own view.
            context = browser.new_context(
                viewport={"width": WIDTH, "height": 1000},
                device_scale_factor=SCALE,
                bypass_csp=True,
            )
            context.add_init_script(LIGHT)
            page = context.new_page()
            response = page.goto(url, wait_until="load", timeout=30_000)
            if response is None or not response.ok:
                status = response.status if response else "no response"
                raise RuntimeError(f"{url} answered {status}")
            page.wait_for_selector(".feature .main-svg", timeout=30_000)
            problem = page.evaluate(ENLARGE, list(features))
            if problem:
                raise RuntimeError(f"{url}: {problem}")
            page.wait_for_timeout(wait * 1000)
            page.screenshot(path=str(out), clip=page.evaluate(CLIP))
        finally:
            browser.close()
    return out


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def current_phase(base: str) -> tuple[str, str | None]:
    """The game's state and the kind of its current phase, from the leaderboard's API."""
    with urllib.request.urlopen(base + "/api/leaderboard", timeout=5) as reply:
        game = json.load(reply)["game"]
    return game["state"], (game.get("phase") or {}).get("kind")


def wait_for_drift(base: str, demo: subprocess.Popen, log: Path) -> None:
    """Wait until the demo game reaches its last phase (the world changes) or finishes."""
    deadline = time.monotonic() + DEMO_TIMEOUT
    while time.monotonic() < deadline:
        if demo.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"the demo stopped early (exit {demo.returncode}): {tail[0]}")
        try:
            state, kind = current_phase(base)
        except OSError:  # not serving yet: the bots are still training
            state, kind = "starting", None
        if state == "finished" or kind == "drift":
            return
        time.sleep(1.0)
    raise RuntimeError(f"the demo game did not reach its last phase in {DEMO_TIMEOUT:.0f} s")


def stop(demo: subprocess.Popen) -> None:
    """Stop the demo (it stops its bots on SIGTERM); its whole process group if it hangs."""
    if demo.poll() is None:
        demo.terminate()
        try:
            demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()


def demo_screenshot(out: Path, features: Sequence[str] = FEATURES, wait: float = 2.0) -> Path:
    """Play the compressed workshop game with one bot team and shoot its monitoring page."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "game_server", "demo", "--teams", "1", "--game", "workshop"]
    cmd += ["--duration", str(DEMO_SECONDS), "--port", str(port), "--no-browser"]
    with tempfile.TemporaryDirectory(prefix="monitoring-demo-") as folder:
        log = Path(folder) / "demo.out"
        print(f"screenshot: playing the workshop game in {DEMO_SECONDS} s (about 2 minutes)...")
        with log.open("w") as output:
            demo = subprocess.Popen(
                cmd, cwd=folder, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                wait_for_drift(base, demo, log)
                return screenshot(base + "/monitoring", out, features, wait)
            finally:
                stop(demo)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, take the screenshot, report one line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "url", nargs="?", help="a monitoring page, e.g. http://HOST:8000/monitoring"
    )
    parser.add_argument("--demo", action="store_true", help="play a short demo game and shoot it")
    parser.add_argument("--out", type=Path, default=OUT, help="PNG file to write")
    parser.add_argument(
        "--features", default=",".join(FEATURES), help="comma-separated features to show"
    )
    parser.add_argument("--wait", type=float, default=2.0, help="seconds to let charts draw")
    args = parser.parse_args(argv)
    if bool(args.url) == args.demo:
        parser.error("give a URL or --demo (one of them)")
    features = [name.strip() for name in args.features.split(",") if name.strip()]
    try:
        if args.demo:
            path = demo_screenshot(args.out, features, args.wait)
        else:
            path = screenshot(args.url, args.out, features, args.wait)
    except Exception as exc:  # a one-line reason, whatever went wrong (browser, network, page)
        print(f"screenshot: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"screenshot: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
