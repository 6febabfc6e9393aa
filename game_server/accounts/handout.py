"""The instructor's handout: every team's secrets in one 0600 JSON file, and a printable page.

The handout lives where the `users` command runs (the instructor's side), by default in
the private state folder (`game_server.common.state_dir`, 0700): `handout.json`
(read back by the next run: passwords cannot be re-derived, so this file is how a re-run
knows them) and `handout.html` (one card per team, every value escaped), both mode 0600.
"""

import html
import json
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

from game_server.common import state_dir

JSON_NAME = "handout.json"
HTML_NAME = "handout.html"
NOT_STORED = "(unchanged, not stored)"


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (temp file + rename), mode 0600 from the start."""
    state_dir.private_dir(path.parent)  # a folder it creates is 0700
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(directory: str | Path) -> dict[str, dict]:
    """The teams of the handout in `directory` by name ({} when there is none yet)."""
    path = Path(directory) / JSON_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the handout: {exc}") from None
    return {t["name"]: t for t in data.get("teams", [])}


class Saved(NamedTuple):
    """Where the handout went: its JSON and its printable cards."""

    json_path: Path
    html_path: Path


def save(directory: str | Path, teams: dict[str, dict]) -> Saved:
    """Write handout.json and handout.html for `teams` (by name); returns both paths."""
    directory = Path(directory)
    rows = [teams[name] for name in sorted(teams)]
    json_path, html_path = directory / JSON_NAME, directory / HTML_NAME
    write_private(json_path, json.dumps({"teams": rows}, indent=2) + "\n")
    write_private(html_path, render_html(rows))
    return Saved(json_path, html_path)


FIELDS = (
    ("Team", "name"),
    ("Members", "members"),
    ("SSH login", "ssh"),
    ("Password", "password"),
    ("API port", "api_port"),
    ("Jupyter port", "jupyter_port"),
    ("Debug port", "debug_port"),
    ("Database", "database_url"),
    ("Game", "game_url"),
    ("Team token", "token"),
)


def render_html(rows: list[dict]) -> str:
    """The printable page: one card per team (cut along the borders), every value escaped."""
    cards = []
    for team in rows:
        items = "".join(
            f"<dt>{html.escape(label)}</dt><dd>{html.escape(str(team.get(key) or '-'))}</dd>"
            for label, key in FIELDS
        )
        cards.append(f'<section class="card"><dl>{items}</dl></section>')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Workshop team cards</title>
<style>
body {{ font-family: sans-serif; margin: 1cm; }}
.card {{ border: 1px dashed #555; padding: .6cm; margin: 0 0 .6cm; break-inside: avoid; }}
dl {{ display: grid; grid-template-columns: 9em 1fr; gap: .2em .6em; margin: 0; }}
dt {{ font-weight: bold; }} dd {{ margin: 0; font-family: monospace; word-break: break-all; }}
</style></head><body>
<h1>Workshop team cards</h1>
<p>Keep these private: one card per team. In your home, <code>participant_starter/.env</code>
holds the same values, and every login shell has them as <code>$PORT</code>,
<code>$JUPYTER_PORT</code>, <code>$DEBUG_PORT</code>, <code>$DATABASE_URL</code>,
<code>$GAME_URL</code> and <code>$TEAM_TOKEN</code>.</p>
{"".join(cards)}
</body></html>
"""
