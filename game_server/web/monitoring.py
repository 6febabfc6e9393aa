"""What the monitoring page shows: drift of recent requests against the training data.

The reference is the game's training data (`Scenario.training_frame()` of the game file
stored in the database); when that file cannot be loaded any more, the game's own first
requests (of its first phase) stand in. Results are cached for a few seconds per
(phase, last) so that a room full of open pages costs one computation.
"""

import dataclasses
import logging
import threading
import time

import pandas as pd
import sqlalchemy as sa

from game_server.scenario import gamefile
from game_server.scenario.population import Drift, Shift
from game_server.storage import games, queries
from game_server.web import drift

log = logging.getLogger(__name__)

CACHE_ENTRIES = 32
REFERENCE_ROWS = 10_000  # from the game's own requests, when the game file is gone


class Monitor:
    """One per app: the loaded reference and a small time-bounded cache of reports."""

    def __init__(self, engine: sa.Engine, cache_seconds: float):
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._reference: tuple[str | None, Reference] | None = None  # (game file, it)
        self._cache: dict[tuple, tuple[float, dict]] = {}

    def report(self, phase: int | None, last: int) -> dict:
        """The drift report of the last `last` requests (of `phase`, or of the game)."""
        key = (phase, last)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit and now - hit[0] < self.cache_seconds:
                return hit[1]
        with self.engine.connect() as conn:
            g = games.game_row(conn)
            ref = self.reference(conn, g["game_file"])
            rows = queries.recent_features(conn, phase, last)
            counts = queries.requests_per_phase(conn)
            plist = games.phase_list(conn)
        started = time.perf_counter()
        features = drift.compare_frame(ref.frame, rows, ref.features) if rows else []
        body = {
            "state": g["state"],
            "phase": phase,
            "last": last,
            "n_current": len(rows),
            "reference": {"source": ref.source, "rows": int(len(ref.frame))},
            "phases": [
                {"index": p["idx"], "name": p["name"], "requests": counts.get(p["idx"], 0)}
                for p in plist
            ],
            "drifted": sum(bool(f["drifted"]) for f in features),
            "features": features,
            # What the timeline changed is the room's puzzle: shown once the game is over.
            "timeline": ref.timeline if g["state"] == "finished" else None,
        }
        log.debug(
            "monitoring computed phase=%s rows=%d ms=%.1f",
            phase,
            len(rows),
            (time.perf_counter() - started) * 1000,
        )
        with self._lock:
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            self._cache[key] = (now, body)
        return body

    def reference(self, conn: sa.Connection, path: str | None) -> "Reference":
        """The reference for the game file at `path`, loaded once per file."""
        with self._lock:
            if self._reference and self._reference[0] == path:
                return self._reference[1]
        ref = load_reference(conn, path)
        with self._lock:
            self._reference = (path, ref)
        return ref


@dataclasses.dataclass(frozen=True)
class Reference:
    """The training data the requests are compared with, and the timeline's changes."""

    frame: pd.DataFrame
    features: tuple[str, ...]
    source: str
    timeline: list[dict] | None


def load_reference(conn: sa.Connection, path: str | None) -> Reference:
    """The game file's training data, else the game's first requests."""
    from game_server.scenario.stream import Scenario

    try:
        game = gamefile.load_game_file(path) if path else None
    except (OSError, gamefile.GameFileError) as exc:
        log.warning("monitoring: game file not loaded path=%s error=%s", path, exc)
        game = None
    if game is not None:
        scenario = Scenario(game)
        return Reference(
            scenario.training_frame(),
            scenario.feature_names,
            "training data",
            timeline(game),
        )
    rows = list(
        reversed(queries.recent_features(conn, 0, REFERENCE_ROWS))
    )  # the first phase's requests stand in for the training data
    frame = pd.DataFrame([r for r in rows if isinstance(r, dict)])
    return Reference(frame, tuple(frame.columns), "first phase's requests", None)


def timeline(game: gamefile.GameFile) -> list[dict]:
    """Per phase: what the game file changed (oddities, shift, drift), as plain values."""
    out = []
    for p in game.phases:
        out.append(
            {
                "name": p.name,
                "kind": p.kind,
                "oddity_share": p.oddity_share,
                "oddities": list(p.oddities) if p.oddity_share else [],
                "shift": changed(p.shift, Shift()),
                "drift": changed(p.drift, Drift()),
            }
        )
    return out


def changed(value, default) -> dict:
    """The fields of a dataclass that differ from its default."""
    return {
        f.name: getattr(value, f.name)
        for f in dataclasses.fields(value)
        if getattr(value, f.name) != getattr(default, f.name)
    }
