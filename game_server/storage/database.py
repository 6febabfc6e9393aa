"""The game database: tables, engine creation, the round writes and the queries.

One database holds one game (the `games` table has one row, id 1). SQLite by default, a
file in WAL mode; PostgreSQL by URL (`postgresql+psycopg://...`). The database is the only
state shared between processes: the game loop writes rounds and totals, the web app (maybe
several WSGI workers) and the CLI read, and control actions are conditional updates.

Running totals (per team and phase, per phase for the reference lines) are updated in the
same transaction as the results they count, so a leaderboard reads a few small tables and
never scans `results`.
"""

import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import sqlalchemy as sa

log = logging.getLogger(__name__)

DEFAULT_DB_PATH = Path("instance") / "game.sqlite"
GAME_ID = 1  # one game per database
STATES = ("lobby", "running", "paused", "finished")
EXCERPT_CHARS = 500
RESULTS_LIMIT_MAX = 500

metadata = sa.MetaData()
Double = sa.Double

games = sa.Table(
    "games",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("key", sa.String(16), nullable=False),  # prefix of request ids
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("game_file", sa.Text),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("phase_index", sa.Integer, nullable=False, server_default="0"),
    # Time run in the current phase up to `phase_resumed_at` (None while not running).
    sa.Column("phase_elapsed", Double, nullable=False, server_default="0"),
    sa.Column("phase_resumed_at", Double),
    sa.Column("frozen", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("frozen_at", Double),
    sa.Column("frozen_board", sa.JSON),
    sa.Column("created_at", Double, nullable=False),
    sa.Column("started_at", Double),
    sa.Column("finished_at", Double),
    # The lease of the one game loop allowed to run this game.
    sa.Column("loop_owner", sa.String(200)),
    sa.Column("loop_heartbeat", Double),
    sa.CheckConstraint("state in ('lobby', 'running', 'paused', 'finished')", name="state_ok"),
)

phases = sa.Table(
    "phases",
    metadata,
    sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("duration", Double, nullable=False),
    sa.Column("rate", Double, nullable=False),
    sa.Column("burst", sa.Integer, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
)

teams = sa.Table(
    "teams",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(40), nullable=False, unique=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("protocol", sa.String(32), nullable=False),
    sa.Column("model", sa.String(200)),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", Double, nullable=False),
    sa.Column("disabled_at", Double),
)

requests = sa.Table(
    "requests",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("request_id", sa.String(64), nullable=False, unique=True),
    sa.Column("phase_index", sa.Integer, nullable=False),
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("oddities", sa.JSON, nullable=False),
    sa.Column("label", sa.Integer, nullable=False),
    sa.Column("p_default", Double),
    sa.Column("oracle_points", Double),
    sa.Column("baseline_points", Double, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),  # sent | scored | void
    sa.Column("sent_at", Double, nullable=False),
    sa.Column("label_visible_at", Double, nullable=False),
    sa.Column("resolved_at", Double),
    sa.CheckConstraint("status in ('sent', 'scored', 'void')", name="status_ok"),
)

results = sa.Table(
    "results",
    metadata,
    sa.Column("seq", sa.Integer, sa.ForeignKey("requests.seq"), primary_key=True),
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id"), primary_key=True),
    sa.Column("outcome", sa.String(8), nullable=False),
    sa.Column("reason", sa.String(32)),
    sa.Column("pred", sa.Integer),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("latency_ms", Double, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("body_excerpt", sa.Text),
    sa.Index("results_team_seq", "team_id", "seq"),
)

team_totals = sa.Table(
    "team_totals",
    metadata,
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id"), primary_key=True),
    sa.Column("phase_index", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("correct", sa.Integer, nullable=False),
    sa.Column("wrong", sa.Integer, nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("latency_sum", Double, nullable=False),
    sa.Column("latency_count", sa.Integer, nullable=False),
)

team_failures = sa.Table(
    "team_failures",
    metadata,
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id"), primary_key=True),
    sa.Column("phase_index", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("reason", sa.String(32), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)

phase_totals = sa.Table(
    "phase_totals",
    metadata,
    sa.Column("phase_index", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("requests", sa.Integer, nullable=False),  # scored requests
    sa.Column("void", sa.Integer, nullable=False),
    sa.Column("oracle_points", Double, nullable=False),
    sa.Column("baseline_points", Double, nullable=False),
)

team_recent = sa.Table(
    "team_recent",
    metadata,
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id"), primary_key=True),
    sa.Column("window", sa.Integer, nullable=False),  # results in the window
    sa.Column("answered", sa.Integer, nullable=False),  # valid answers among them
    sa.Column("accuracy", Double),  # correct / valid answers in the window
    sa.Column("latency_p50", Double),
    sa.Column("latency_p95", Double),
    sa.Column("up", sa.Boolean),
    sa.Column("updated_at", Double, nullable=False),
)

points_history = sa.Table(
    "points_history",
    metadata,
    sa.Column("at", Double, primary_key=True),
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id"), primary_key=True),
    sa.Column("points", sa.Integer, nullable=False),
)

reference_history = sa.Table(
    "reference_history",
    metadata,
    sa.Column("at", Double, primary_key=True),
    sa.Column("oracle_points", Double, nullable=False),
    sa.Column("baseline_points", Double, nullable=False),
)

control_log = sa.Table(
    "control_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", Double, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("from_state", sa.String(16)),
    sa.Column("to_state", sa.String(16)),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
)


NO_TABLES = "the game database has no tables: run `game-server init`"


class NotInitialised(RuntimeError):
    """The database has no game yet: `game-server init` creates it."""


# --- engine -----------------------------------------------------------------------------


def database_url(url: str | None = None) -> str:
    """`url`, else $GAME_DATABASE_URL, else the SQLite file instance/game.sqlite (cwd)."""
    url = url or os.environ.get("GAME_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{DEFAULT_DB_PATH}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    """WAL (readers never block the writer), a busy timeout, and foreign keys on."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a crash of the process (kill -9); only a power cut
    # may lose the last transactions.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str | None = None) -> sa.Engine:
    """An engine for the game database at `url` (see `database_url`)."""
    url = database_url(url)
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 10})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def safe_url(engine: sa.Engine) -> str:
    """The engine's URL without a password, for logs and messages."""
    return engine.url.render_as_string(hide_password=True)


def init_db(engine: sa.Engine, name: str = "", game_file: str | None = None) -> bool:
    """Create the tables and the game row when missing; True when the game was created."""
    import secrets

    metadata.create_all(engine)
    with engine.begin() as conn:
        if conn.execute(sa.select(games.c.id)).first() is not None:
            return False
        conn.execute(
            games.insert().values(
                id=GAME_ID,
                key=secrets.token_hex(3),
                name=name,
                game_file=game_file,
                settings={},
                state="lobby",
                created_at=time.time(),
            )
        )
    log.info("game database created url=%s", safe_url(engine))
    return True


def game_row(conn: sa.Connection) -> sa.RowMapping:
    """The game's row; NotInitialised when there is none."""
    try:
        row = conn.execute(sa.select(games).where(games.c.id == GAME_ID)).mappings().first()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        text = str(exc)
        if "no such table" in text or "does not exist" in text:
            raise NotInitialised(NO_TABLES) from None
        raise
    if row is None:
        raise NotInitialised("the game database has no game: run `game-server init`")
    return row


def configure_game(
    conn: sa.Connection, name: str, game_file: str, settings: dict, phase_rows: list[dict]
) -> None:
    """Store the game file's name, settings and phases (replacing the phases)."""
    conn.execute(
        games.update()
        .where(games.c.id == GAME_ID)
        .values(name=name, game_file=game_file, settings=settings)
    )
    conn.execute(phases.delete())
    conn.execute(phases.insert(), [{"idx": i, **p} for i, p in enumerate(phase_rows)])


def phase_list(conn: sa.Connection) -> list[dict]:
    """The game's phases in order, as dicts."""
    rows = conn.execute(sa.select(phases).order_by(phases.c.idx)).mappings()
    return [dict(r) for r in rows]


def phase_elapsed(game: sa.RowMapping | dict, now: float) -> float:
    """Seconds the game has run in its current phase at `now`."""
    elapsed = game["phase_elapsed"]
    if game["phase_resumed_at"] is not None:
        elapsed += max(0.0, now - game["phase_resumed_at"])
    return elapsed


def log_control(
    conn: sa.Connection,
    action: str,
    actor: str,
    ok: bool,
    from_state: str | None,
    to_state: str | None,
    detail: str = "",
) -> None:
    """Record one control action (or a clock phase change) with who and when."""
    conn.execute(
        control_log.insert().values(
            at=time.time(),
            action=action,
            actor=actor[:200],
            ok=ok,
            from_state=from_state,
            to_state=to_state,
            detail=detail,
        )
    )


# --- the round writes (the game loop's hot path) --------------------------------------


def _upsert_add(conn: sa.Connection, table: sa.Table, keys: Sequence[str], rows: list[dict]):
    """INSERT rows, or add their non-key values to the existing row (SQLite and PostgreSQL)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table)
    adds = {c: table.c[c] + stmt.excluded[c] for c in rows[0] if c not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=adds), rows)


def insert_requests(conn: sa.Connection, rows: Sequence[dict]) -> None:
    """Commit-before-send: store requests with status `sent` (each a dict of columns)."""
    if not rows:
        return
    conn.execute(requests.insert(), [{**r, "status": "sent"} for r in rows])


def _clean_excerpt(text: str | None) -> str | None:
    """A body excerpt that any database stores (PostgreSQL refuses NUL characters)."""
    if text is None:
        return None
    return text[:EXCERPT_CHARS].replace("\x00", "\\x00")


def store_rounds(conn: sa.Connection, rounds: Sequence[tuple], now: float | None = None) -> int:
    """Score rounds in the caller's transaction: results, totals, status `scored`.

    Each round is `(seq, phase_index, oracle_points, baseline_points, results)` with
    `results` a sequence of `scoring.Result`. Only requests still `sent` are scored
    (the primary key (seq, team_id) of `results` also forbids counting twice). Returns the
    number of results stored.
    """
    now = time.time() if now is None else now
    rows, totals, failures = [], {}, defaultdict(int)
    reference: dict[int, list] = {}
    for seq, phase_index, oracle, baseline, round_results in rounds:
        ref = reference.setdefault(phase_index, [0, 0.0, 0.0])
        ref[0] += 1
        ref[1] += oracle or 0.0
        ref[2] += baseline or 0.0
        for r in round_results:
            s = r.score
            rows.append(
                {
                    "seq": seq,
                    "team_id": r.team_id,
                    "outcome": s.outcome,
                    "reason": s.reason,
                    "pred": s.pred,
                    "points": s.points,
                    "latency_ms": float(r.latency_ms),
                    "status_code": s.status_code,
                    "body_excerpt": _clean_excerpt(s.body_excerpt),
                }
            )
            t = totals.setdefault((r.team_id, phase_index), [0, 0, 0, 0, 0.0, 0])
            t[0] += s.points
            t[{"correct": 1, "wrong": 2}.get(s.outcome, 3)] += 1
            if s.counts_latency:
                t[4] += float(r.latency_ms)
                t[5] += 1
            if s.outcome == "failed":
                failures[(r.team_id, phase_index, s.reason or "unknown")] += 1
    seqs = [rnd[0] for rnd in rounds]
    updated = conn.execute(
        requests.update()
        .where(requests.c.seq.in_(seqs), requests.c.status == "sent")
        .values(status="scored", resolved_at=now)
    ).rowcount
    if updated != len(seqs):
        # Never happens by construction; refuse rather than count a request twice.
        raise RuntimeError(f"{len(seqs) - updated} of {len(seqs)} requests are not `sent`")
    if rows:
        conn.execute(results.insert(), rows)
    _upsert_add(
        conn,
        team_totals,
        ("team_id", "phase_index"),
        [
            {
                "team_id": team_id,
                "phase_index": phase_index,
                "points": t[0],
                "correct": t[1],
                "wrong": t[2],
                "failed": t[3],
                "latency_sum": t[4],
                "latency_count": t[5],
            }
            for (team_id, phase_index), t in totals.items()
        ],
    )
    _upsert_add(
        conn,
        team_failures,
        ("team_id", "phase_index", "reason"),
        [
            {"team_id": k[0], "phase_index": k[1], "reason": k[2], "count": n}
            for k, n in failures.items()
        ],
    )
    _upsert_add(
        conn,
        phase_totals,
        ("phase_index",),
        [
            {
                "phase_index": p,
                "requests": ref[0],
                "void": 0,
                "oracle_points": ref[1],
                "baseline_points": ref[2],
            }
            for p, ref in reference.items()
        ],
    )
    return len(rows)


def store_round(
    engine: sa.Engine,
    request: dict,
    round_results: Sequence,
    scored_at: float | None = None,
) -> None:
    """Store one whole round (request `sent`, then scored) in two transactions.

    The benchmark's entry point; the game loop batches the same two steps on its writer
    thread (`game.DbWriter`). `request` holds the columns of `requests`.
    """
    with engine.begin() as conn:
        insert_requests(conn, [request])
    with engine.begin() as conn:
        store_rounds(
            conn,
            [
                (
                    request["seq"],
                    request["phase_index"],
                    request.get("oracle_points"),
                    request["baseline_points"],
                    round_results,
                )
            ],
            now=scored_at,
        )


def void_requests(conn: sa.Connection, seqs: Iterable[int] | None = None) -> int:
    """Mark requests still `sent` as `void` (all of them, or those in `seqs`); counts them.

    A void request counts for nobody: after a crash nobody knows which teams' answers
    were lost, so dropping the whole round is the only choice fair to every team.
    """
    cond = requests.c.status == "sent"
    if seqs is not None:
        cond = sa.and_(cond, requests.c.seq.in_(list(seqs)))
    per_phase = conn.execute(
        sa.select(requests.c.phase_index, sa.func.count())
        .where(cond)
        .group_by(requests.c.phase_index)
    ).all()
    if not per_phase:
        return 0
    conn.execute(requests.update().where(cond).values(status="void", resolved_at=time.time()))
    _upsert_add(
        conn,
        phase_totals,
        ("phase_index",),
        [
            {
                "phase_index": p,
                "requests": 0,
                "void": n,
                "oracle_points": 0.0,
                "baseline_points": 0.0,
            }
            for p, n in per_phase
        ],
    )
    return sum(n for _, n in per_phase)


def next_seq(conn: sa.Connection) -> int:
    """The sequence number of the next request (the stream goes on after a restart)."""
    return (conn.execute(sa.select(sa.func.max(requests.c.seq))).scalar() or 0) + 1


def rounds_in_phase(conn: sa.Connection, phase_index: int) -> int:
    """How many rounds (requests, void ones included) a phase has sent."""
    query = sa.select(sa.func.count()).where(requests.c.phase_index == phase_index)
    return conn.execute(query).scalar_one()


def store_recent(conn: sa.Connection, rows: Sequence[dict]) -> None:
    """Replace the recent-window snapshot rows of the given teams."""
    if not rows:
        return
    ids = [r["team_id"] for r in rows]
    conn.execute(team_recent.delete().where(team_recent.c.team_id.in_(ids)))
    conn.execute(team_recent.insert(), list(rows))


def sample_history(conn: sa.Connection, at: float) -> None:
    """Append one sample of every team's points and the reference lines, for the chart."""
    conn.execute(
        points_history.insert().from_select(
            ["at", "team_id", "points"],
            sa.select(
                sa.literal(at, Double), team_totals.c.team_id, sa.func.sum(team_totals.c.points)
            ).group_by(team_totals.c.team_id),
        )
    )
    ref = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(phase_totals.c.oracle_points), 0.0),
            sa.func.coalesce(sa.func.sum(phase_totals.c.baseline_points), 0.0),
        )
    ).one()
    conn.execute(
        reference_history.insert().values(at=at, oracle_points=ref[0], baseline_points=ref[1])
    )


# --- queries for the web app and the CLI ----------------------------------------------


def game_clock(conn: sa.Connection, now: float | None = None) -> dict:
    """The game's state, phase and time left, as the leaderboard shows them."""
    now = time.time() if now is None else now
    g = game_row(conn)
    plist = phase_list(conn)
    phase = None
    game_left = None
    if plist:
        idx = min(g["phase_index"], len(plist) - 1)
        p = plist[idx]
        elapsed = phase_elapsed(g, now) if g["state"] != "lobby" else 0.0
        left = max(0.0, p["duration"] - elapsed)
        if g["state"] == "finished":
            left, game_left = 0.0, 0.0
        else:
            game_left = left + sum(q["duration"] for q in plist[idx + 1 :])
        phase = {
            "index": idx,
            "name": p["name"],
            "kind": p["kind"],
            "description": p["description"],
            "duration": p["duration"],
            "rate": p["rate"],
            "time_left": round(left, 1),
        }
    heartbeat = g["loop_heartbeat"]
    return {
        "name": g["name"],
        "state": g["state"],
        "phase": phase,
        "phase_count": len(plist),
        "time_left": None if game_left is None else round(game_left, 1),
        "frozen": bool(g["frozen"]),
        "loop_alive": bool(g["loop_owner"]) and heartbeat is not None and now - heartbeat < 5,
    }


def leaderboard_teams(conn: sa.Connection) -> dict:
    """The public standings: every team's totals and recent window, and the reference."""
    sums = {
        r.team_id: r
        for r in conn.execute(
            sa.select(
                team_totals.c.team_id,
                sa.func.sum(team_totals.c.points).label("points"),
                sa.func.sum(team_totals.c.correct).label("correct"),
                sa.func.sum(team_totals.c.wrong).label("wrong"),
                sa.func.sum(team_totals.c.failed).label("failed"),
                sa.func.sum(team_totals.c.latency_sum).label("latency_sum"),
                sa.func.sum(team_totals.c.latency_count).label("latency_count"),
            ).group_by(team_totals.c.team_id)
        )
    }
    failures: dict[int, dict] = defaultdict(dict)
    for team_id, reason, n in conn.execute(
        sa.select(
            team_failures.c.team_id, team_failures.c.reason, sa.func.sum(team_failures.c.count)
        ).group_by(team_failures.c.team_id, team_failures.c.reason)
    ):
        failures[team_id][reason] = int(n)
    recent = {r.team_id: r for r in conn.execute(sa.select(team_recent))}
    board = []
    for t in conn.execute(sa.select(teams).order_by(teams.c.name)).mappings():
        s, w = sums.get(t["id"]), recent.get(t["id"])
        count = int(s.latency_count) if s else 0
        board.append(
            {
                "name": t["name"],
                "active": bool(t["active"]),
                "points": int(s.points) if s else 0,
                "correct": int(s.correct) if s else 0,
                "wrong": int(s.wrong) if s else 0,
                "failed": int(s.failed) if s else 0,
                "failures": failures.get(t["id"], {}),
                "latency_mean": round(s.latency_sum / count, 1) if count else None,
                "recent_window": w.window if w else 0,
                "accuracy": w.accuracy if w else None,
                "latency_p50": w.latency_p50 if w else None,
                "latency_p95": w.latency_p95 if w else None,
                "up": w.up if w else None,
            }
        )
    board.sort(key=lambda r: (-r["points"], r["name"]))
    for rank, row in enumerate(board, 1):
        row["rank"] = rank
    ref = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(phase_totals.c.requests), 0),
            sa.func.coalesce(sa.func.sum(phase_totals.c.void), 0),
            sa.func.coalesce(sa.func.sum(phase_totals.c.oracle_points), 0.0),
            sa.func.coalesce(sa.func.sum(phase_totals.c.baseline_points), 0.0),
        )
    ).one()
    return {
        "teams": board,
        "reference": {
            "requests": int(ref[0]),
            "void": int(ref[1]),
            "oracle_points": round(float(ref[2]), 2),
            "baseline_points": round(float(ref[3]), 2),
        },
    }


def leaderboard(conn: sa.Connection, now: float | None = None) -> dict:
    """What `GET /api/leaderboard` returns: the live clock, and the frozen or live standings."""
    game = game_clock(conn, now)
    g = game_row(conn)
    if g["frozen"] and g["frozen_board"]:
        board = dict(g["frozen_board"])
        board["frozen_at"] = g["frozen_at"]
    else:
        board = leaderboard_teams(conn)
    return {"game": game, "frozen": game["frozen"], **board}


def team_by_name(conn: sa.Connection, name: str) -> sa.RowMapping | None:
    """The team called `name`, or None."""
    return conn.execute(sa.select(teams).where(teams.c.name == name)).mappings().first()


def _latest_results(conn: sa.Connection, team_id: int, limit: int, *columns):
    """A team's latest `limit` results with their requests' `columns`, newest first.

    Reads through the (team_id, seq) index: the cost does not grow with the game.
    """
    return conn.execute(
        sa.select(*columns)
        .select_from(results.join(requests, requests.c.seq == results.c.seq))
        .where(results.c.team_id == team_id)
        .order_by(results.c.seq.desc())
        .limit(limit)
    )


def team_results(conn: sa.Connection, team_id: int, limit: int, now: float | None = None) -> list:
    """A team's most recent results, newest first.

    Until a request's label is revealed, a valid answer shows as `answered` without its
    points: these pages are public, and `correct`/`wrong` beside the prediction would
    give every team the label before the feedback delay.
    """
    now = time.time() if now is None else now
    rows = _latest_results(
        conn,
        team_id,
        limit,
        results,
        requests.c.request_id,
        requests.c.oddities,
        requests.c.phase_index,
        requests.c.sent_at,
        requests.c.label_visible_at,
    ).mappings()
    out = []
    for r in rows:
        revealed = r["label_visible_at"] <= now
        hide = not revealed and r["outcome"] != "failed"
        out.append(
            {
                "request_id": r["request_id"],
                "seq": r["seq"],
                "phase_index": r["phase_index"],
                "sent_at": r["sent_at"],
                "oddities": r["oddities"],
                "outcome": "answered" if hide else r["outcome"],
                "points": None if hide else r["points"],
                "reason": r["reason"],
                "pred": r["pred"],
                "latency_ms": round(r["latency_ms"], 1),
                "status_code": r["status_code"],
                "body_excerpt": r["body_excerpt"],
                "revealed": revealed,
            }
        )
    return out


def feedback(
    conn: sa.Connection, team: sa.RowMapping, after: int, limit: int, now: float | None = None
) -> dict:
    """The team's revealed labels after the cursor `after` (a request seq), in seq order.

    Results are stored when a round completes, not in send order, and labels become
    visible one request at a time; so the walk stops at the first request that is not yet
    resolved or not yet visible, and the cursor never passes a request the team could
    still be owed. Void requests are included (status `void`, no outcome) for teams that
    existed when they were sent: their label is as true as any other.
    """
    now = time.time() if now is None else now
    res = results.alias("res")
    rows = conn.execute(
        sa.select(
            requests.c.seq,
            requests.c.request_id,
            requests.c.status,
            requests.c.features,
            requests.c.label,
            requests.c.sent_at,
            requests.c.label_visible_at,
            requests.c.phase_index,
            res.c.pred,
            res.c.outcome,
            res.c.reason,
            res.c.points,
        )
        .select_from(
            requests.outerjoin(
                res, sa.and_(res.c.seq == requests.c.seq, res.c.team_id == team["id"])
            )
        )
        .where(requests.c.seq > after)
        .order_by(requests.c.seq)
        .limit(limit)
    ).mappings()
    items, cursor = [], after
    for r in rows:
        if r["status"] == "sent" or r["label_visible_at"] > now:
            break
        cursor = r["seq"]
        void_for_team = r["status"] == "void" and team["created_at"] <= r["sent_at"]
        if r["outcome"] is None and not void_for_team:
            continue  # not sent to this team (registered later, or disabled then)
        items.append(
            {
                "id": r["request_id"],
                "seq": r["seq"],
                "phase_index": r["phase_index"],
                "status": r["status"],
                "features": r["features"],
                "label": r["label"],
                "pred": r["pred"],
                "outcome": r["outcome"],
                "reason": r["reason"],
                "points": r["points"],
                "sent_at": r["sent_at"],
            }
        )
    return {"cursor": cursor, "items": items}


def history(conn: sa.Connection, since: float = 0.0) -> dict:
    """The chart's samples after `since`: points per team name, and the reference lines."""
    series: dict[str, list] = defaultdict(list)
    for at, name, points in conn.execute(
        sa.select(points_history.c.at, teams.c.name, points_history.c.points)
        .join(teams, teams.c.id == points_history.c.team_id)
        .where(points_history.c.at > since)
        .order_by(points_history.c.at)
    ):
        series[name].append([at, points])
    ref = conn.execute(
        sa.select(reference_history)
        .where(reference_history.c.at > since)
        .order_by(reference_history.c.at)
    ).all()
    return {
        "teams": dict(series),
        "oracle": [[r.at, round(r.oracle_points, 2)] for r in ref],
        "baseline": [[r.at, round(r.baseline_points, 2)] for r in ref],
    }


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) of already sorted values, nearest rank; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


# --- queries and settings for the web pages (issue 5) ---------------------------------
# A separate block: new functions only, built on the tables above.

web_settings = sa.Table(
    "web_settings",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def shared_setting(engine: sa.Engine, key: str, make) -> str:
    """The stored value of `key`, creating it with `make()` once (shared by every worker).

    Several WSGI worker processes may ask at once: the first insert wins and every
    process reads the winner's value back.
    """
    web_settings.create(engine, checkfirst=True)
    with engine.begin() as conn:
        row = conn.execute(sa.select(web_settings.c.value).where(web_settings.c.key == key))
        value = row.scalar()
        if value is not None:
            return value
    try:
        with engine.begin() as conn:
            conn.execute(web_settings.insert().values(key=key, value=make()))
    except sa.exc.IntegrityError:
        pass  # another worker stored it first
    with engine.begin() as conn:
        return conn.execute(
            sa.select(web_settings.c.value).where(web_settings.c.key == key)
        ).scalar_one()


def team_failure_counts(conn: sa.Connection, team_id: int) -> dict[str, int]:
    """A team's failures by reason over the whole game (from the running totals)."""
    rows = conn.execute(
        sa.select(team_failures.c.reason, sa.func.sum(team_failures.c.count))
        .where(team_failures.c.team_id == team_id)
        .group_by(team_failures.c.reason)
    )
    return {reason: int(n) for reason, n in rows}


def team_series(
    conn: sa.Connection, team_id: int, limit: int = 1000, bucket: int = 20, now=None
) -> list[dict]:
    """Accuracy and latency over a team's last `limit` results, in buckets of `bucket`.

    Public: accuracy counts only requests whose label is already visible. Reads at most
    `limit` rows through the (team_id, seq) index, whatever the size of the game.
    """
    now = time.time() if now is None else now
    rows = _latest_results(
        conn,
        team_id,
        limit,
        results.c.outcome,
        results.c.latency_ms,
        results.c.status_code,
        results.c.reason,
        requests.c.sent_at,
        requests.c.label_visible_at,
    ).all()
    rows.reverse()
    series = []
    for start in range(0, len(rows), bucket):
        chunk = rows[start : start + bucket]
        revealed = [r for r in chunk if r.label_visible_at <= now and r.outcome != "failed"]
        lat = sorted(
            r.latency_ms for r in chunk if r.status_code is not None or r.reason == "timeout"
        )
        series.append(
            {
                "at": round(chunk[-1].sent_at, 2),
                "results": len(chunk),
                "failed": sum(r.outcome == "failed" for r in chunk),
                "revealed": len(revealed),
                "accuracy": (
                    round(sum(r.outcome == "correct" for r in revealed) / len(revealed), 3)
                    if revealed
                    else None
                ),
                "latency_p50": percentile(lat, 0.5),
                "latency_p95": percentile(lat, 0.95),
            }
        )
    return series


def last_revealed_at(conn: sa.Connection, now: float | None = None) -> float | None:
    """When the newest label that is visible now was sent (None before the first)."""
    now = time.time() if now is None else now
    return conn.execute(
        sa.select(sa.func.max(requests.c.sent_at)).where(requests.c.label_visible_at <= now)
    ).scalar()


def recent_features(conn: sa.Connection, phase_index: int | None, last: int) -> list[dict]:
    """The feature dicts of the last `last` requests sent (in one phase, or the whole game)."""
    q = sa.select(requests.c.features).order_by(requests.c.seq.desc()).limit(last)
    if phase_index is not None:
        q = q.where(requests.c.phase_index == phase_index)
    return [f for (f,) in conn.execute(q)]


def requests_per_phase(conn: sa.Connection) -> dict[int, int]:
    """How many requests each phase has sent (void ones included)."""
    rows = conn.execute(
        sa.select(requests.c.phase_index, sa.func.count()).group_by(requests.c.phase_index)
    )
    return {int(p): int(n) for p, n in rows}


def control_log_recent(conn: sa.Connection, limit: int = 50) -> list[dict]:
    """The newest control actions first (who, when, what, whether it applied)."""
    rows = conn.execute(
        sa.select(control_log).order_by(control_log.c.id.desc()).limit(limit)
    ).mappings()
    return [dict(r) for r in rows]
