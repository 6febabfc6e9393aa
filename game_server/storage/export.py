"""Export a game's data: CSV and JSON of teams, requests, results and totals per phase.

Each table goes to `<name>.csv` and `<name>.json` (a list of objects) in the output
directory. Token hashes are never exported. Rows are streamed, so a long game's results
do not need to fit in memory at once.
"""

import csv
import json
import logging
from pathlib import Path

import sqlalchemy as sa

from game_server.storage import schema
from game_server.storage.games import game_row

log = logging.getLogger(__name__)


def _queries() -> dict[str, sa.Select]:
    """The exported tables, as queries with readable columns."""
    t, r, res = schema.teams, schema.requests, schema.results
    tt, tf, pt = schema.team_totals, schema.team_failures, schema.phase_totals
    ph, cl = schema.phases, schema.control_log
    return {
        "teams": sa.select(*[c for c in t.c if c.name != "token_hash"]).order_by(t.c.id),
        "phases": sa.select(ph).order_by(ph.c.idx),
        "requests": sa.select(r).order_by(r.c.seq),
        "results": sa.select(r.c.request_id, t.c.name.label("team"), res)
        .join(r, r.c.seq == res.c.seq)
        .join(t, t.c.id == res.c.team_id)
        .order_by(res.c.seq, res.c.team_id),
        "team_totals": sa.select(t.c.name.label("team"), tt)
        .join(t, t.c.id == tt.c.team_id)
        .order_by(t.c.name, tt.c.phase_index),
        "team_failures": sa.select(t.c.name.label("team"), tf)
        .join(t, t.c.id == tf.c.team_id)
        .order_by(t.c.name, tf.c.phase_index, tf.c.reason),
        "phase_totals": sa.select(pt).order_by(pt.c.phase_index),
        "control_log": sa.select(cl).order_by(cl.c.id),
    }


def _cell(value):
    """A CSV cell: JSON for lists and dicts, the value otherwise."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


def export(engine: sa.Engine, out_dir: str | Path) -> dict[str, int]:
    """Write every table as CSV and JSON into `out_dir`; the row count of each."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    with engine.connect() as conn:
        game_row(conn)  # a clear error when there is no game
        for name, query in _queries().items():
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
