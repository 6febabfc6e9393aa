"""Export a game's data: CSV and JSON of teams, requests, results and totals per phase.

Each table goes to `<name>.csv` and `<name>.json` (a list of objects) in the output
directory. Token hashes are never exported. Rows are streamed, so a long game's results
do not need to fit in memory at once.

The export of a game that is not finished tells no label before its time, like the public
pages (GAME.md §6): a request whose label is not visible yet has no label, p_default,
oracle or baseline points; a valid answer to it shows as `answered`, without pred and
points; the totals are the public ones (`reveal`). A finished game's export has everything.
"""

import csv
import json
import logging
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from game_server.storage import schema
from game_server.storage.games import game_row

log = logging.getLogger(__name__)

SECRET_UNTIL_VISIBLE = ("label", "p_default", "oracle_points", "baseline_points")


def _hidden(condition: Any, column: sa.ColumnElement[Any], shown: Any = None) -> Any:
    """`column`, or `shown` (NULL) where `condition` holds; named like the column."""
    return sa.case((condition, shown), else_=column).label(column.name)


def _requests(now: float | None) -> sa.Select[Any]:
    """The requests; with `now` (an unfinished game) without what their label would tell."""
    r = schema.requests
    if now is None:
        return sa.select(r).order_by(r.c.seq)
    hidden = r.c.label_visible_at > now
    return sa.select(
        *[_hidden(hidden, c) if c.name in SECRET_UNTIL_VISIBLE else c for c in r.c]
    ).order_by(r.c.seq)


def _results(now: float | None) -> sa.Select[Any]:
    """Every result with its team and request id; with `now`, valid answers before the label
    as `answered` without pred and points."""
    t, r, res = schema.teams, schema.requests, schema.results
    columns: list[Any] = list(res.c)
    if now is not None:
        hidden = sa.and_(r.c.label_visible_at > now, res.c.outcome != "failed")
        secret = {"outcome": "answered", "pred": None, "points": None}
        columns = [_hidden(hidden, c, secret[c.name]) if c.name in secret else c for c in res.c]
    return (
        sa.select(r.c.request_id, t.c.name.label("team"), *columns)
        .join(r, r.c.seq == res.c.seq)
        .join(t, t.c.id == res.c.team_id)
        .order_by(res.c.seq, res.c.team_id)
    )


def _totals(final: bool) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """`team_totals` and `phase_totals`: the true totals, or the public ones (named alike)."""
    t, tt, pt = schema.teams, schema.team_totals, schema.phase_totals
    pick = "" if final else "public_"
    team_columns = [
        tt.c[pick + c.name].label(c.name) if c.name in ("points", "correct", "wrong") else c
        for c in tt.c
        if not c.name.startswith("public_")
    ]
    reference = ("requests", "oracle_points", "baseline_points")
    phase_columns = [
        pt.c[pick + c.name].label(c.name) if c.name in reference else c
        for c in pt.c
        if not c.name.startswith("public_")
    ]
    return (
        sa.select(t.c.name.label("team"), *team_columns)
        .join(t, t.c.id == tt.c.team_id)
        .order_by(t.c.name, tt.c.phase_index),
        sa.select(*phase_columns).order_by(pt.c.phase_index),
    )


def _queries(final: bool, now: float) -> dict[str, sa.Select[Any]]:
    """The exported tables, as queries with readable columns (public unless `final`)."""
    t, tf = schema.teams, schema.team_failures
    ph, cl = schema.phases, schema.control_log
    hide_until = None if final else now
    team_totals, phase_totals = _totals(final)
    return {
        "teams": sa.select(*[c for c in t.c if c.name != "token_hash"]).order_by(t.c.id),
        "phases": sa.select(ph).order_by(ph.c.idx),
        "requests": _requests(hide_until),
        "results": _results(hide_until),
        "team_totals": team_totals,
        "team_failures": sa.select(t.c.name.label("team"), tf)
        .join(t, t.c.id == tf.c.team_id)
        .order_by(t.c.name, tf.c.phase_index, tf.c.reason),
        "phase_totals": phase_totals,
        "control_log": sa.select(cl).order_by(cl.c.id),
    }


def _cell(value: object) -> object:
    """A CSV cell: JSON for lists and dicts, the value otherwise."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


def export(engine: sa.Engine, out_dir: str | Path) -> dict[str, int]:
    """Write every table as CSV and JSON into `out_dir`; the row count of each."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    now = time.time()
    with engine.connect() as conn:
        final = game_row(conn).state == "finished"  # a clear error when there is no game
        for name, query in _queries(final, now).items():
            result = conn.execution_options(stream_results=True).execute(query)
            columns = list(result.keys())
            n = 0
            with (
                open(out / f"{name}.csv", "w", newline="", encoding="utf-8") as fcsv,
                open(out / f"{name}.json", "w", encoding="utf-8") as fjson,
            ):
                writer = csv.writer(fcsv)
                writer.writerow(columns)
                fjson.write("[")
                for row in result:
                    writer.writerow([_cell(v) for v in row])
                    fjson.write(("," if n else "") + "\n")
                    fjson.write(json.dumps(dict(zip(columns, row, strict=True))))
                    n += 1
                fjson.write("\n]\n")
            counts[name] = n
    log.info("exported out=%s %s", out, " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts
