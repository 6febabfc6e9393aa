"""The tables of the game database, each declared once.

One database holds one game: the `games` table has one row, id `GAME_ID`. Times are epoch
seconds (floats). Running totals (`team_totals`, `team_failures`, `phase_totals`) are
updated in the same transaction as the results they count, so a leaderboard reads a few
small tables and never scans `results`.

Each running total of a round's outcome comes twice: the true one (`points`, `correct`,
`wrong`, the reference points), counted when the round is scored, and the public one
(`public_*`), counted once the round's label is visible (`reveal`; failures at once).
The public standings read the public columns until the game is finished.
"""

import sqlalchemy as sa

GAME_ID = 1  # one game per database
STATES = ("lobby", "running", "paused", "finished")

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
    # The last heartbeat of any shard's game loop (the leases are in `loop_leases`).
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

# One row per round and shard (`shards`): each shard's own copy of a round's status and
# send time, so a shard's crash voids only its own part of a round.
round_shards = sa.Table(
    "round_shards",
    metadata,
    sa.Column("seq", sa.Integer, sa.ForeignKey("requests.seq"), primary_key=True),
    sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),  # I of I/N
    sa.Column("status", sa.String(8), nullable=False),  # sent | scored | void
    sa.Column("sent_at", Double, nullable=False),
    sa.Column("resolved_at", Double),
    sa.CheckConstraint("status in ('sent', 'scored', 'void')", name="shard_status_ok"),
)

# The lease of each shard's game loop (`shards.acquire_lease`): one row per shard I of N.
loop_leases = sa.Table(
    "loop_leases",
    metadata,
    sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("shard_count", sa.Integer, nullable=False),
    sa.Column("owner", sa.String(200)),
    sa.Column("heartbeat", Double),
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
    # What the public may know: failures' points at once, the rest once the label is visible.
    sa.Column("public_points", sa.Integer, nullable=False, server_default="0"),
    sa.Column("public_correct", sa.Integer, nullable=False, server_default="0"),
    sa.Column("public_wrong", sa.Integer, nullable=False, server_default="0"),
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
    # The scored requests whose label is visible, and their reference points.
    sa.Column("public_requests", sa.Integer, nullable=False, server_default="0"),
    sa.Column("public_oracle_points", Double, nullable=False, server_default="0"),
    sa.Column("public_baseline_points", Double, nullable=False, server_default="0"),
)

team_recent = sa.Table(
    "team_recent",
    metadata,
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id"), primary_key=True),
    sa.Column("window", sa.Integer, nullable=False),  # results in the window
    sa.Column("answered", sa.Integer, nullable=False),  # valid answers among them
    sa.Column("latency_p50", Double),
    sa.Column("latency_p95", Double),
    sa.Column("up", sa.Boolean),
    sa.Column("updated_at", Double, nullable=False),
)

# The leaderboard's recent accuracy: each team's valid answers, and the correct ones among
# them, in the last `reveal.RECENT_ROUNDS` rounds whose label is visible.
team_recent_labels = sa.Table(
    "team_recent_labels",
    metadata,
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id"), primary_key=True),
    sa.Column("correct", sa.Integer, nullable=False),
    sa.Column("answered", sa.Integer, nullable=False),
)

# How far the labels are public: every request up to `seq` is counted in the public totals.
reveal_mark = sa.Table(
    "reveal_mark",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # GAME_ID
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("at", Double, nullable=False),  # when it last moved
)

# The latest probe of each team's health route before the game and while paused (one
# row per team, overwritten every few seconds: bounded; never results, never scored).
team_health = sa.Table(
    "team_health",
    metadata,
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id"), primary_key=True),
    sa.Column("up", sa.Boolean, nullable=False),
    sa.Column("reason", sa.String(32)),  # why not up: a scoring reason
    sa.Column("status_code", sa.Integer),
    sa.Column("checked_at", Double, nullable=False),
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

# Settings the web workers share, e.g. the session key (`database.shared_setting`).
web_settings = sa.Table(
    "web_settings",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# The secret of the customer's stream (`scenario.stream`): random, made at `init`, read by
# the game loops only. With it the game's code and game file (readable by every user) are
# not enough to compute an applicant or a label; nothing shows, exports or logs it.
stream_secret = sa.Table(
    "stream_secret",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # GAME_ID
    sa.Column("secret", sa.String(64), nullable=False),  # hex, SECRET_BYTES random bytes
    sa.Column("created_at", Double, nullable=False),
)
