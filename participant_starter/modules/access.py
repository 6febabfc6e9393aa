"""Only the game (and your team) may use your model: `POST /predict` needs the game's key.

Every user of the workshop server can reach every port on it. Without a check, another
team could send your API its own requests: use your model, or flood it. So when
`TEAM_TOKEN` is set (on the workshop server your `.env` has it), `/predict` answers only
a request that shows one of:

- `X-Game-Key`: what the game's customer sends. It is made from your token's digest,
  which only the game (in its private database) and you (your token) have;
- `Authorization: Bearer <your TEAM_TOKEN>`: you, trying your own API (`curl`,
  `selfcheck.py`).

Anything else gets a 401 at once, before the body is read or the model runs. Without a
`TEAM_TOKEN` (your own computer) there is nothing to check. `/health` and `/metrics` stay
open: they tell nothing of your model's answers.
"""

import hashlib
import hmac

from flask import Flask, Response, jsonify, request

# The same as the game's `teams.api_key` (a test of the game checks they agree).
PURPOSE = b"workshop-game customer key v1"
REFUSED = "this API answers only the game and its team: X-Game-Key or your TEAM_TOKEN"


def game_key(token: str) -> str:
    """The key the game's customer sends to the API of the team whose token this is."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    return hmac.new(digest.encode(), PURPOSE, hashlib.sha256).hexdigest()


def init_app(app: Flask, token: str) -> None:
    """Refuse `/predict` to anyone without the game's key or the token (when there is one)."""
    if not token:
        return
    key, bearer = game_key(token).encode(), f"Bearer {token}".encode()

    @app.before_request
    def only_the_game_and_the_team() -> tuple[Response, int] | None:
        if request.path != "/predict":
            return None
        shown_key = request.headers.get("X-Game-Key", "").encode("utf-8", "replace")
        shown_token = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if hmac.compare_digest(shown_key, key) or hmac.compare_digest(shown_token, bearer):
            return None
        return jsonify(error=REFUSED), 401
