"""Take the deck's screenshot of the game's monitoring page with headless Chromium.

    python scripts/screenshot_monitoring.py http://127.0.0.1:8000/monitoring
    python scripts/screenshot_monitoring.py URL --out slides/figures/monitoring.png --wait 3

Run it against a game that has played through the population shift (for example
`make demo`), so the page shows drift. It uses the system's Chromium (Debian's `chromium`)
through Playwright and never downloads a browser.
"""

import argparse
import sys
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


def screenshot(url: str, out: Path, width: int = 1280, height: int = 760, wait: float = 2.0):
    """Open `url` in headless Chromium, let its charts draw for `wait` seconds, save a PNG."""
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            response = page.goto(url, wait_until="networkidle", timeout=30_000)
            if response is None or not response.ok:
                status = response.status if response else "no response"
                raise RuntimeError(f"{url} answered {status}")
            page.wait_for_timeout(wait * 1000)
            page.screenshot(path=str(out))
        finally:
            browser.close()
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, take the screenshot, report one line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the monitoring page, e.g. http://127.0.0.1:8000/monitoring")
    parser.add_argument("--out", type=Path, default=OUT, help="PNG file to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=760)
    parser.add_argument("--wait", type=float, default=2.0, help="seconds to let charts draw")
    args = parser.parse_args(argv)
    try:
        path = screenshot(args.url, args.out, args.width, args.height, args.wait)
    except Exception as exc:  # a one-line reason, whatever went wrong (browser, network, page)
        print(f"screenshot: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"screenshot: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
