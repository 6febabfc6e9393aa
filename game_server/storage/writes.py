"""The round write path (the game loop's hot path): requests, scored rounds, totals, history.

Crash safety: a round's request is committed as `sent` before it is sent (`insert_requests`);
when every team's result is in, the results, the running totals and the status `scored`
are written in one transaction (`store_rounds`). Requests left `sent` by a stopped loop
become `void` (`void_requests`): they count for nobody.

The totals of a batch are summed in Python first, then added with one
`INSERT ... ON CONFLICT DO UPDATE` per table, so a batch costs a few statements whatever
its size. A failure's points go to the public totals at once (they tell nothing of the
label); correct and wrong answers and the reference points wait for `reveal`.
"""

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from game_server.common.records import (
    CORRECT,
    FAILED,
    WRONG,
    RequestRow,
    Result,
    Score,
    ScoredRound,
)
from game_server.storage.schema import (
    Double,
    phase_totals,
    points_history,
    reference_history,
    requests,
    results,
    round_shards,
    team_failures,
    team_recent,
    team_totals,
)

EXCERPT_CHARS = 500  # stored of a failure's body excerpt


@dataclass(slots=True)
class TeamTotals:
    """What a batch adds to one team's running totals in one phase (`team_totals`)."""

    points: int = 0
    correct: int = 0
    wrong: int = 0
    failed: int = 0
    latency_sum: float = 0.0
    latency_count: int = 0
    public_points: int = 0  # failures' points here, the rest at the reveal
    public_correct: int = 0
    public_wrong: int = 0

    def add(self, score: Score, latency_ms: float) -> None:
        """Count one scored result."""
        self.points += score.points
        if score.outcome == CORRECT:
            self.correct += 1
        elif score.outcome == WRONG:
            self.wrong += 1
        else:
            self.failed += 1
            self.public_points += score.points  # a failure tells nothing of the label
        if score.counts_latency:
            self.latency_sum += latency_ms
            self.latency_count += 1

    def row(self, team_id: int, phase_index: int) -> dict[str, Any]:
        """The `team_totals` row these totals add to."""
        return {
            "team_id": team_id,
            "phase_index": phase_index,
            "points": self.points,
            "correct": self.correct,
            "wrong": self.wrong,
            "failed": self.failed,
            "latency_sum": self.latency_sum,
            "latency_count": self.latency_count,
            "public_points": self.public_points,
            "public_correct": self.public_correct,
            "public_wrong": self.public_wrong,
        }


@dataclass(slots=True)
class PhaseTotals:
    """What a batch adds to one phase's reference totals (`phase_totals`)."""

    requests: int = 0
    void: int = 0
    oracle_points: float = 0.0
    baseline_points: float = 0.0
    public_requests: int = 0  # the reveal's: scored requests whose label is visible
    public_oracle_points: float = 0.0
    public_baseline_points: float = 0.0

    def row(self, phase_index: int) -> dict[str, Any]:
        """The `phase_totals` row these totals add to."""
        return {
            "phase_index": phase_index,
            "requests": self.requests,
            "void": self.void,
            "oracle_points": self.oracle_points,
            "baseline_points": self.baseline_points,
            "public_requests": self.public_requests,
            "public_oracle_points": self.public_oracle_points,
            "public_baseline_points": self.public_baseline_points,
        }


@dataclass(slots=True)
class Batch:
    """The rows and summed totals of a batch of scored rounds, ready to write."""

    seqs: list[int] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    teams: dict[tuple[int, int], TeamTotals] = field(default_factory=dict)  # (team, phase)
    failures: defaultdict[tuple[int, int, str], int] = field(
        default_factory=lambda: defaultdict(int)  # (team, phase, reason) -> count
    )
    rounds: dict[int, ScoredRound] = field(default_factory=dict)  # by seq

    def add(self, rnd: ScoredRound) -> None:
        """Count one round: its results and their totals."""
        self.seqs.append(rnd.seq)
        self.rounds[rnd.seq] = rnd
        for r in rnd.results:
            s = r.score
            self.results.append(_result_row(rnd.seq, r))
            key = (r.team_id, rnd.phase_index)
            totals = self.teams.get(key)
            if totals is None:
                totals = self.teams[key] = TeamTotals()
            totals.add(s, r.latency_ms)
            if s.outcome == FAILED:
                self.failures[(r.team_id, rnd.phase_index, s.reason or "unknown")] += 1

    def reference(self, seqs: Iterable[int]) -> dict[int, PhaseTotals]:
        """Per phase: the rounds `seqs` (scored first here) and their reference points."""
        phases: dict[int, PhaseTotals] = {}
        for seq in seqs:
            rnd = self.rounds[seq]
            ref = phases.setdefault(rnd.phase_index, PhaseTotals())
            ref.requests += 1
            ref.oracle_points += rnd.oracle_points or 0.0
            ref.baseline_points += rnd.baseline_points or 0.0
        return phases


def _result_row(seq: int, r: Result) -> dict[str, Any]:
    """The `results` row of one team's result."""
    s = r.score
    return {
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


def _clean_excerpt(text: str | None) -> str | None:
    """A body excerpt that any database stores (PostgreSQL refuses NUL characters)."""
    if text is None:
        return None
    return text[:EXCERPT_CHARS].replace("\x00", "\\x00")


def upsert_add(
    conn: sa.Connection, table: sa.Table, keys: Sequence[str], rows: list[dict[str, Any]]
) -> None:
    """INSERT rows, or add their non-key values to the existing row (SQLite and PostgreSQL)."""
    if not rows:
        return
    stmt = dialect_insert(conn, table)
    adds = {c: table.c[c] + stmt.excluded[c] for c in rows[0] if c not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=adds), rows)


def dialect_insert(conn: sa.Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT of the connection's dialect (for ON CONFLICT); the one place that picks it."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def insert_requests(conn: sa.Connection, rows: Sequence[RequestRow], shard: int = 1) -> None:
    """Commit-before-send: the requests (once: every shard sends the same), status `sent`.

    A request row is shared by the shards: the first to commit it inserts it, the others
    find it there. Each shard's own status of the round is its `round_shards` row.
    """
    if not rows:
        return
    rows = sorted(rows, key=lambda r: r["seq"])  # the same lock order in every shard
    stmt = dialect_insert(conn, requests).on_conflict_do_nothing()
    conn.execute(stmt, [{**r, "status": "sent"} for r in rows])
    conn.execute(
        round_shards.insert(),
        [
            {"seq": r["seq"], "shard": shard, "status": "sent", "sent_at": r["sent_at"]}
            for r in rows
        ],
    )


def store_rounds(
    conn: sa.Connection, rounds: Sequence[ScoredRound], now: float | None = None, shard: int = 1
) -> int:
    """Score a shard's rounds in the caller's transaction: results, totals, status `scored`.

    Only the shard's rounds still `sent` are scored (the primary key (seq, team_id) of
    `results` also forbids counting twice). The request turns `scored` with the first
    shard that scores it, which alone adds its reference points. Returns the number of
    results stored.
    """
    now = time.time() if now is None else now
    batch = Batch()
    for rnd in sorted(rounds, key=lambda r: r.seq):
        batch.add(rnd)
    mine = round_shards.c
    updated = conn.execute(
        round_shards.update()
        .where(mine.seq.in_(batch.seqs), mine.shard == shard, mine.status == "sent")
        .values(status="scored", resolved_at=now)
    ).rowcount
    if updated != len(batch.seqs):
        # Never happens by construction; refuse rather than count a request twice.
        n = len(batch.seqs)
        raise RuntimeError(f"{n - updated} of {n} requests are not `sent` by shard {shard}")
    first = conn.execute(
        requests.update()
        .where(requests.c.seq.in_(batch.seqs), requests.c.status == "sent")
        .values(status="scored", resolved_at=now)
        .returning(requests.c.seq)
    ).scalars()
    if batch.results:
        conn.execute(results.insert(), batch.results)
    _add_totals(conn, batch)
    _add_phase_totals(conn, batch.reference(first))
    return len(batch.results)


def _add_totals(conn: sa.Connection, batch: Batch) -> None:
    """Add a batch's summed totals to the running totals tables."""
    teams = [t.row(team_id, phase_index) for (team_id, phase_index), t in batch.teams.items()]
    upsert_add(conn, team_totals, ("team_id", "phase_index"), teams)
    failures = [
        {"team_id": team_id, "phase_index": phase_index, "reason": reason, "count": n}
        for (team_id, phase_index, reason), n in batch.failures.items()
    ]
    upsert_add(conn, team_failures, ("team_id", "phase_index", "reason"), failures)


def _add_phase_totals(conn: sa.Connection, per_phase: dict[int, PhaseTotals]) -> None:
    """Add to the reference totals of each phase."""
    rows = [t.row(p) for p, t in per_phase.items()]
    upsert_add(conn, phase_totals, ("phase_index",), rows)


def void_requests(conn: sa.Connection, seqs: Iterable[int] | None = None, shard: int = 1) -> int:
    """Mark a shard's rounds still `sent` as `void` (all, or those in `seqs`); counts them.

    A void round counts for nobody: after a crash nobody knows which teams' answers were
    lost, so dropping the shard's whole round is the only choice fair to its teams. The
    request itself turns `void` when no shard scored it or still sends it.
    """
    mine = round_shards.c
    cond = sa.and_(mine.shard == shard, mine.status == "sent")
    if seqs is not None:
        cond = sa.and_(cond, mine.seq.in_(list(seqs)))
    now = time.time()
    voided = list(
        conn.execute(
            round_shards.update()
            .where(cond)
            .values(status="void", resolved_at=now)
            .returning(mine.seq)
        ).scalars()
    )
    if not voided:
        return 0
    others = (
        sa.select(mine.seq)
        .where(mine.seq == requests.c.seq, mine.status.in_(("sent", "scored")))
        .exists()
    )
    lost = sa.and_(requests.c.seq.in_(voided), requests.c.status == "sent", ~others)
    per_phase = conn.execute(
        sa.select(requests.c.phase_index, sa.func.count())
        .where(lost)
        .group_by(requests.c.phase_index)
    ).all()
    conn.execute(requests.update().where(lost).values(status="void", resolved_at=now))
    _add_phase_totals(conn, {p: PhaseTotals(void=n) for p, n in per_phase})
    return len(voided)


def store_recent(conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Replace the recent-window snapshot rows of the given teams."""
    if not rows:
        return
    ids = [r["team_id"] for r in rows]
    conn.execute(team_recent.delete().where(team_recent.c.team_id.in_(ids)))
    conn.execute(team_recent.insert(), list(rows))


def sample_history(conn: sa.Connection, at: float) -> None:
    """Append one sample of every team's public points and the reference lines, for the chart.

    Public: what the leaderboard shows at `at` (see `reveal`), never a label before its time.
    Once per `at`: the shards of a game sample the same instants, the first one writes.
    """
    tt, pt = team_totals.c, phase_totals.c
    points = sa.select(sa.literal(at, Double), tt.team_id, sa.func.sum(tt.public_points))
    conn.execute(
        dialect_insert(conn, points_history)
        .from_select(["at", "team_id", "points"], points.where(sa.true()).group_by(tt.team_id))
        .on_conflict_do_nothing()
    )
    ref = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(pt.public_oracle_points), 0.0),
            sa.func.coalesce(sa.func.sum(pt.public_baseline_points), 0.0),
        )
    ).one()
    conn.execute(
        dialect_insert(conn, reference_history)
        .values(at=at, oracle_points=ref[0], baseline_points=ref[1])
        .on_conflict_do_nothing()
    )
