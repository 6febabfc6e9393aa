"""A tiny per-process cache of JSON answers for the endpoints every open page polls.

A room full of projectors and laptops polls `/api/leaderboard` every second; computing it
once per `LIVE_CACHE_SECONDS` (default 0.5 s) per worker keeps the cost per request flat
(a dictionary lookup) however many pages are open. The pages still update within 2 s.
"""

import hashlib
import threading
import time

from flask import Response, current_app, json

_lock = threading.Lock()


def cached_json(key: str, compute) -> Response:
    """The JSON of `compute()`, computed at most once per LIVE_CACHE_SECONDS in this app.

    When the entry is stale, one thread recomputes it while the others keep answering
    with the stale one (for at most the time one computation takes): under load, a
    threadful of simultaneous recomputations would stall every request behind them.
    """
    ttl = float(current_app.config.get("LIVE_CACHE_SECONDS", 0.5))
    store = current_app.extensions.setdefault("game_live_cache", {})
    refreshing = current_app.extensions.setdefault("game_live_cache_refreshing", set())
    now = time.monotonic()
    with _lock:
        hit = store.get(key)
        stale = hit is None or now - hit[0] >= ttl
        mine = stale and key not in refreshing
        if mine:
            refreshing.add(key)
    if hit is None or mine:
        try:
            body = json.dumps(compute()).encode()
            hit = (now, body, hashlib.sha1(body).hexdigest())
            with _lock:
                store[key] = hit
        finally:
            if mine:
                with _lock:
                    refreshing.discard(key)
    response = Response(hit[1], mimetype="application/json")
    response.set_etag(hit[2])
    return response
