"""What the monitoring page shows: drift of recent requests against the training data.

The reference is the game's training data (`Scenario.training_frame()` of the game file
stored in the database); when that file cannot be loaded any more, the game's own first
requests (of its first phase) stand in. A report costs 0.1-0.3 s of Python, so only a
few are possible (a window of WINDOWS requests, of the game or of one of its phases), and
each is computed at most once per `cache_seconds` and shared: while one thread computes
it, the others asking for it wait for that result instead of computing it again.
"""

import dataclasses
import hashlib
import json
import logging
import threading
import time
from typing import Any

import pandas as pd
import sqlalchemy as sa

from game_server.scenario import gamefile
from game_server.scenario.population import Drift, Shift
from game_server.storage import games, queries
from game_server.web import drift

log = logging.getLogger(__name__)

WINDOWS = (200, 1000, 5000)  # the newest requests a report may compare (the page's choice)
REFERENCE_ROWS = 10_000  # from the game's own requests, when the game file is gone

Key = tuple[int | None, int]  # (phase or None for the whole game, window)


class UnknownPhase(ValueError):
    """A phase the game does not have; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Report:
    """One computed report: when, the body, its JSON and the JSON's ETag."""

    at: float
    body: dict
    text: bytes
    etag: str


class Monitor:
    """One per app: the loaded reference and the reports, each at most once per interval."""

    def __init__(self, engine: sa.Engine, cache_seconds: float):
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._reference: tuple[str | None, Reference] | None = None  # (game file, it)
        self._cache: dict[Key, Report] = {}  # valid keys only: (phases + 1) x WINDOWS
        self._computing: dict[Key, threading.Lock] = {}

    def report(self, phase: int | None, last: int) -> dict:
        """The drift report of the last `last` requests (of `phase`, or of the game)."""
        return self.cached(phase, last).body

    def cached(self, phase: int | None, last: int) -> Report:
        """The report, computed by one thread at most once per interval; UnknownPhase."""
        if last not in WINDOWS:
            raise ValueError(f"last must be one of {WINDOWS}")
        key = (phase, last)
        fresh = self._fresh(key)
        if fresh is not None:
            return fresh
        with self._lock:
            computing = self._computing.setdefault(key, threading.Lock())
        with computing:  # the others wait for this computation, then share it
            fresh = self._fresh(key)
            if fresh is None:
                try:
                    body = self._compute(phase, last)
                except UnknownPhase:
                    with self._lock:  # only the game's phases keep a lock: bounded
                        self._computing.pop(key, None)
                    raise
                text = json.dumps(body, separators=(",", ":")).encode()
                fresh = Report(time.monotonic(), body, text, hashlib.sha1(text).hexdigest())
                with self._lock:
                    self._cache[key] = fresh
        return fresh

    def _fresh(self, key: Key) -> Report | None:
        """The cached report for `key` while it is younger than `cache_seconds`."""
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit.at < self.cache_seconds:
            return hit
        return None

    def _compute(self, phase: int | None, last: int) -> dict:
        """Compute one report (0.1-0.3 s of Python for 5,000 requests)."""
        with self.engine.connect() as conn:
            g = games.game_row(conn)
            plist = games.phase_list(conn)
            if phase is not None and not 0 <= phase < len(plist):
                raise UnknownPhase(f"phase must be all or 0..{len(plist) - 1}, not {phase}")
            ref = self.reference(conn, g.game_file)
            rows = queries.recent_features(conn, phase, last)
            counts = queries.requests_per_phase(conn)
        started = time.perf_counter()
        features = drift.compare_frame(ref.frame, rows, ref.features) if rows else []
        body = {
            "state": g.state,
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
            "timeline": ref.timeline if g.state == "finished" else None,
        }
        log.debug(
            "monitoring computed phase=%s rows=%d ms=%.1f",
            phase,
            len(rows),
            (time.perf_counter() - started) * 1000,
        )
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


def changed(value: Any, default: Any) -> dict:
    """The fields of a dataclass that differ from its default."""
    return {
        f.name: getattr(value, f.name)
        for f in dataclasses.fields(value)
        if getattr(value, f.name) != getattr(default, f.name)
    }
