"""The team database: what the API answered, the true labels the game revealed, and a
training frame joining the two.

SQLAlchemy 2 speaks to SQLite (a file in `output/`, the default) and PostgreSQL (your
team's database on the workshop server, `DATABASE_URL` in `.env`) with the same code.
"""

import logging
from datetime import UTC, datetime

import pandas as pd
import requests
import sqlalchemy as sa

from modules.config import load_settings, resolve

log = logging.getLogger(__name__)

metadata_obj = sa.MetaData()

predictions = sa.Table(
    "predictions",
    metadata_obj,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(200), nullable=False, index=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("features", sa.JSON),  # exactly what the customer sent, messy or not
    sa.Column("pred", sa.Integer, nullable=False),
    sa.Column("proba", sa.Float),
    sa.Column("model_version", sa.String(100)),
    sa.Column("latency_ms", sa.Float),
    sa.Column("fallback", sa.Boolean, nullable=False, default=False),
)

labels = sa.Table(
    "labels",
    metadata_obj,
    sa.Column("request_id", sa.String(200), primary_key=True),
    sa.Column("label", sa.Integer, nullable=False),
    sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=False),
)

# Where the last feedback pull stopped, so the next one asks only for newer labels.
feedback_cursor = sa.Table(
    "feedback_cursor",
    metadata_obj,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("cursor", sa.String(200), nullable=False),
)


class FeedbackError(RuntimeError):
    """The game server did not give us feedback (wrong URL or token, or it is down)."""


def engine_from_env(url: str | None = None) -> sa.Engine:
    """The engine for `url`, or for DATABASE_URL from the environment / `.env`."""
    url = url or load_settings()["DATABASE_URL"]
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = resolve(parsed.database)  # relative to this folder, wherever you start from
        path.parent.mkdir(parents=True, exist_ok=True)
        parsed = parsed.set(database=str(path))
    # pre_ping: a connection the database closed (restart, idle timeout) is replaced quietly.
    return sa.create_engine(parsed, pool_pre_ping=True)


def create_tables(engine: sa.Engine) -> None:
    """Create the tables that do not exist yet (safe to call every time)."""
    metadata_obj.create_all(engine)


def save_predictions(engine: sa.Engine, records: list[dict]) -> None:
    """Insert many prediction records in one transaction (one round trip per batch)."""
    if records:
        # EXERCISE 3 BEGIN: insert `records` into the `predictions` table, one transaction
        with engine.begin() as conn:
            conn.execute(predictions.insert(), records)
        # EXERCISE 3 END


def save_prediction(engine: sa.Engine, record: dict) -> None:
    """Insert one prediction record (see the `predictions` table for its keys)."""
    save_predictions(engine, [record])


def load_predictions(engine: sa.Engine, limit: int | None = None) -> pd.DataFrame:
    """The logged predictions, newest first (`limit` rows at most)."""
    query = sa.select(predictions).order_by(predictions.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        return pd.DataFrame(
            conn.execute(query).mappings().all(), columns=query.selected_columns.keys()
        )


def load_cursor(engine: sa.Engine) -> str:
    """Where the last feedback pull stopped ("0" before the first)."""
    query = sa.select(feedback_cursor.c.cursor).where(feedback_cursor.c.name == "game")
    with engine.connect() as conn:
        return conn.execute(query).scalar() or "0"


def _store_labels(conn: sa.Connection, rows: list[dict], cursor: str) -> int:
    """Insert the labels we do not have yet and move the cursor, in the caller's transaction."""
    ids = [row["request_id"] for row in rows]
    have = set(
        conn.execute(sa.select(labels.c.request_id).where(labels.c.request_id.in_(ids))).scalars()
    )
    new = {row["request_id"]: row for row in rows if row["request_id"] not in have}
    if new:
        conn.execute(labels.insert(), list(new.values()))
    updated = conn.execute(
        feedback_cursor.update().where(feedback_cursor.c.name == "game").values(cursor=cursor)
    )
    if updated.rowcount == 0:
        conn.execute(feedback_cursor.insert().values(name="game", cursor=cursor))
    return len(new)


def pull_feedback(
    engine: sa.Engine,
    game_url: str | None = None,
    token: str | None = None,
    timeout: float = 10.0,
    max_pages: int = 1000,
) -> int:
    """Fetch the labels revealed since the last pull and store them; return how many are new.

    `GET <game>/api/feedback?after=<cursor>` with `Authorization: Bearer <team token>`
    answers `{"cursor": <seq>, "items": [{"id": ..., "label": 0 or 1, ...}, ...]}`, in
    pages. GAME_URL and TEAM_TOKEN come from the environment / `.env` when not given.
    """
    settings = load_settings()
    game_url = (game_url or settings["GAME_URL"]).rstrip("/")
    token = token or settings["TEAM_TOKEN"]
    if not token:
        raise FeedbackError("no team token: set TEAM_TOKEN in .env (it is on your handout)")
    create_tables(engine)
    cursor, total = load_cursor(engine), 0
    for _ in range(max_pages):
        page = _fetch_feedback(game_url, token, cursor, timeout)
        now = datetime.now(UTC)
        rows = [
            {"request_id": str(item["id"]), "label": int(item["label"]), "pulled_at": now}
            for item in page.get("items", [])
            if item.get("label") is not None
        ]
        next_cursor = str(page.get("cursor", cursor))
        if next_cursor == cursor and not rows:
            break  # nothing new revealed yet
        with engine.begin() as conn:
            total += _store_labels(conn, rows, next_cursor)
        cursor = next_cursor
    log.info("feedback pulled new_labels=%d cursor=%s", total, cursor)
    return total


def _fetch_feedback(game_url: str, token: str, cursor: str, timeout: float) -> dict:
    """One page of feedback from the game server, or a FeedbackError saying why not."""
    url = f"{game_url}/api/feedback"
    try:
        response = requests.get(
            url,
            params={"after": cursor, "limit": "1000"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise FeedbackError(
            f"cannot reach the game at {game_url} ({type(exc).__name__}): "
            "is GAME_URL in .env right (it is on your handout), and is the game running?"
        ) from exc
    if response.status_code in (401, 403):
        raise FeedbackError(
            f"the game refused your team token ({response.status_code}): "
            "TEAM_TOKEN in .env must be the token on your handout"
        )
    if response.status_code != 200:
        raise FeedbackError(f"{url} answered {response.status_code}: {_one_line(response.text)}")
    try:
        page = response.json()
    except ValueError as exc:
        raise FeedbackError(
            f"{url} did not answer JSON: {_one_line(response.text)} (is GAME_URL right?)"
        ) from exc
    if not isinstance(page, dict):
        raise FeedbackError(f"{url} answered {type(page).__name__}, not a JSON object")
    return page


def _one_line(text: str, limit: int = 200) -> str:
    """The start of a response body on one line (an HTML error page has many)."""
    return " ".join(text[:limit].split())


def training_frame(engine: sa.Engine, label: str) -> pd.DataFrame:
    """The requests we answered that have a revealed label: one row per request.

    Columns: the features as the customer sent them (clean them with
    `features.clean_frame`, like the training data), then `request_id`, `received_at`,
    `pred` (what we answered) and the label under the name `label`.
    """
    query = (
        sa.select(
            predictions.c.request_id,
            predictions.c.received_at,
            predictions.c.features,
            predictions.c.pred,
            labels.c.label,
        )
        .join(labels, labels.c.request_id == predictions.c.request_id)
        .order_by(predictions.c.id)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    # A request answered twice (a retry) counts once.
    rows = list({row["request_id"]: row for row in rows}.values())
    features = pd.DataFrame(
        [r["features"] if isinstance(r["features"], dict) else {} for r in rows]
    )
    info = pd.DataFrame(
        {
            "request_id": [r["request_id"] for r in rows],
            "received_at": [r["received_at"] for r in rows],
            "pred": [r["pred"] for r in rows],
            label: [r["label"] for r in rows],
        }
    )
    features = features.drop(columns=[c for c in info.columns if c in features.columns])
    return pd.concat([features, info], axis=1)
