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
    """The JSON of `compute()`, computed at most once per LIVE_CACHE_SECONDS in this app."""
    ttl = float(current_app.config.get("LIVE_CACHE_SECONDS", 0.5))
    store = current_app.extensions.setdefault("game_live_cache", {})
    now = time.monotonic()
    with _lock:
        hit = store.get(key)
    if hit is None or now - hit[0] >= ttl:
        body = json.dumps(compute()).encode()
        hit = (now, body, hashlib.sha1(body).hexdigest())
        with _lock:
            store[key] = hit
    response = Response(hit[1], mimetype="application/json")
    response.set_etag(hit[2])
    return response
