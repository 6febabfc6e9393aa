"""The instructor's notebooks, each run top to bottom in a fresh `python3` kernel against
data the test makes: a team database of logged requests, a real short game and its export.

The notebooks read their parameters from environment variables (see each one's first
cell), write their tables into an output folder, and the tests assert on those tables.
"""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import requests
import sqlalchemy as sa
from engine_helpers import FAST_GAME, peeking
from nbclient import NotebookClient
from scenario_helpers import TEST_SECRET
from starter_helpers import STARTER, free_port
from team_apis import Handler, Request, TeamAPIs, json_answer, refused_port, response

from game_server.play import teams
from game_server.scenario.gamefile import builtin_game_path, load_game_file
from game_server.scenario.stream import Scenario
from game_server.storage import schema
from game_server.storage.database import prepare_game

sys.path.insert(0, str(STARTER))  # the starter is its own project: its `modules` package
from modules import database  # noqa: E402
from modules.model_io import load_model  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
REFERENCE = "1.0-instructor-reference-solution.ipynb"
MONITORING = "2.0-instructor-monitoring.ipynb"
DEBRIEF = "3.0-instructor-debrief.ipynb"
SHIFT, DRIFT = 2, 4  # the workshop game's "population shift" and "the world changes" phases


def run_notebook(name: str, tmp_path: Path, **env: str) -> nbformat.NotebookNode:
    """Execute a notebook in a fresh kernel with `env` set; keep the executed copy."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(
            notebook,
            timeout=120,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        ).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    nbformat.write(notebook, tmp_path / name)
    return notebook


@pytest.fixture(scope="module")
def workshop() -> Scenario:
    """The workshop game's applicants, with their true labels."""
    return Scenario(load_game_file(builtin_game_path("workshop")), TEST_SECRET)


def team_database(path: Path, scenario: Scenario, phases: list[tuple[int, int]], pred=None):
    """A starter database with logged requests of `phases` [(phase, count)] and their labels.

    `pred(applicant)` is what the team answered (default: always 0).
    """
    engine = database.engine_from_env(f"sqlite:///{path}")
    database.create_tables(engine)
    start = datetime.now(UTC) - timedelta(hours=1)
    records, labels, n = [], [], 0
    for phase, count in phases:
        for seq in range(count):
            applicant = scenario.draw(phase, seq)
            request_id = f"p{phase}-{seq:05d}"
            records.append(
                {
                    "request_id": request_id,
                    "received_at": start + timedelta(seconds=n),
                    "features": applicant.features,
                    "pred": pred(applicant) if pred else 0,
                    "proba": None,
                    "model_version": "test",
                    "latency_ms": 2.0,
                    "fallback": False,
                }
            )
            labels.append({"request_id": request_id, "label": applicant.label, "pulled_at": start})
            n += 1
    database.save_predictions(engine, records)
    with engine.begin() as conn:
        conn.execute(database.labels.insert(), labels)
    engine.dispose()
    return f"sqlite:///{path}"


@pytest.mark.parametrize("name", [REFERENCE, MONITORING, DEBRIEF])
def test_committed_notebooks_have_no_outputs_and_a_parameters_cell(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "os.environ.get(" in code[0].source


def game_database(path: Path, scenario: Scenario, phases: list[tuple[int, int]], hidden: int = 0):
    """A game database of the workshop game with requests of `phases` [(phase, count)],
    as the game loop stores them, and one team's results ("steady": a fixed rule, a
    timeout every 50th request). The last `hidden` requests' labels are not revealed yet.
    """
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    prepare_game(engine, scenario.game)
    teams.add_team(engine, "steady", "http://127.0.0.1:9/predict")
    teams.add_team(engine, "idle", "http://127.0.0.1:10/predict")
    total = sum(count for _, count in phases)
    start = time.time() - 3600
    requests_, results, seq = [], [], 0
    for phase, count in phases:
        for n in range(count):
            seq += 1
            a = scenario.draw(phase, n)
            sent_at = start + seq
            requests_.append(
                {
                    "seq": seq,
                    "request_id": f"t-{seq:07d}",
                    "phase_index": phase,
                    "features": a.features,
                    "oddities": list(a.oddities),
                    "label": int(a.label),
                    "p_default": a.p_default,
                    "oracle_points": 0.5,
                    "baseline_points": 0.5,
                    "status": "scored",
                    "sent_at": sent_at,
                    "label_visible_at": time.time() + 600 if seq > total - hidden else sent_at + 60,
                }
            )
            age = a.features.get("age")
            pred = int(isinstance(age, int | float) and age < 30)
            failed = seq % 50 == 0
            outcome = "failed" if failed else ("correct" if pred == a.label else "wrong")
            results.append(
                {
                    "seq": seq,
                    "team_id": 1,
                    "outcome": outcome,
                    "reason": "timeout" if failed else None,
                    "pred": None if failed else pred,
                    "points": {"correct": 1, "wrong": 0, "failed": -1}[outcome],
                    "latency_ms": 2000.0 if failed else 5.0 + seq % 10,
                    "status_code": 200,
                }
            )
    with engine.begin() as conn:
        conn.execute(schema.requests.insert(), requests_)
        conn.execute(schema.results.insert(), results)
    engine.dispose()
    return url, requests_, results


@pytest.mark.slow
def test_monitoring_reads_a_team_from_the_game_database(tmp_path, workshop):
    """Warm-up requests, then the shift: the inputs drift where the shift moves them, and
    the team's answers, latency, failures and accuracy (revealed labels only) add up."""
    url, sent, results = game_database(
        tmp_path / "game.sqlite", workshop, [(0, 600), (SHIFT, 1000)], hidden=400
    )
    out = tmp_path / "out"
    run_notebook(
        MONITORING,
        tmp_path,
        MONITORING_GAME_DATABASE_URL=url,
        MONITORING_TEAM="steady",
        MONITORING_OUTPUT_DIR=str(out),
        MONITORING_RECENT="1000",
    )
    summary = json.loads((out / "drift.json").read_text())
    features = {row["feature"]: row for row in summary["features"]}
    assert summary["team"] == "steady" and summary["teams"] == ["idle", "steady"]
    assert summary["requests"] == 1600 and summary["recent_requests"] == 1000
    assert summary["revealed_labels"] == 1200
    # The shift: younger (and what follows from age), larger loans, a new region.
    assert {"age", "loan_amount", "region"} <= set(summary["drifted"])
    assert features["region"]["psi"] > 1.0 and features["age"]["psi"] > 0.3
    assert features["age"]["method"] == "Wasserstein (normed)"  # 10,000 reference rows
    assert features["region"]["method"] == "Jensen-Shannon"
    for name in ("debt_to_income", "late_payments", "num_credit_lines"):
        assert not features[name]["drifted"] and features[name]["psi"] < 0.05, features[name]
    # By phase: the warm-up is stable, the shift is not.
    by_phase = {phase: psi["region"] for phase, psi in summary["psi_by_phase"].items()}
    assert len(by_phase) == 2
    assert by_phase["1. warm-up"] < 0.1 < 1.0 < by_phase["3. population shift"]
    # The oddities the game put in, as it logged them.
    recent_oddities = [k for row in sent[-1000:] for k in row["oddities"]]
    assert sum(summary["oddities"].values()) == len(recent_oddities)
    # The team's phases: its answers, failures and latency, from the game's results.
    phases = {row["phase"]: row for row in summary["team_by_phase"]}
    shift = phases["3. population shift"]
    shift_results = results[600:]
    assert shift["requests"] == 1000 and shift["failed"] == 20
    assert shift["answered"] == 980 and 5.0 <= shift["p50_ms"] <= 14.0
    assert shift["points"] == sum(r["points"] for r in shift_results)
    assert summary["failures"] == {"timeout": {"1. warm-up": 12, "3. population shift": 20}}
    # Accuracy from revealed labels only: the last 400 requests' labels are not public yet.
    revealed = [
        (q, r) for q, r in zip(sent[:1200], results[:1200], strict=True) if r["pred"] is not None
    ]
    accuracy = {row["phase"]: row for row in summary["accuracy_by_phase"]}
    shift_known = [(q, r) for q, r in revealed if q["phase_index"] == SHIFT]
    assert accuracy["3. population shift"]["revealed"] == len(shift_known) < 600
    assert accuracy["3. population shift"]["accuracy"] == pytest.approx(
        sum(q["label"] == r["pred"] for q, r in shift_known) / len(shift_known)
    )
    for figure in ("distributions.png", "psi.png", "psi_by_phase.png", "team.png"):
        assert (out / figure).stat().st_size > 5000
    assert (out / "accuracy_by_phase.png").stat().st_size > 5000


@pytest.mark.slow
def test_monitoring_sees_no_drift_in_the_training_population(tmp_path, workshop):
    url, _, _ = game_database(tmp_path / "game.sqlite", workshop, [(0, 1200)])
    out = tmp_path / "out"
    run_notebook(
        MONITORING, tmp_path, MONITORING_GAME_DATABASE_URL=url, MONITORING_OUTPUT_DIR=str(out)
    )
    summary = json.loads((out / "drift.json").read_text())
    assert summary["team"] == "idle"  # no team named: the first by name
    assert summary["drifted"] == []
    assert max(row["psi"] for row in summary["features"]) < 0.05
    assert {row["failed"] for row in summary["team_by_phase"]} == {0}  # idle: no results


def game_server(*args: str) -> str:
    """Run one `game-server` command to completion; its standard output."""
    command = [sys.executable, "-m", "game_server", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout


def leaky_until(engine: sa.Engine, phase: int | None) -> Handler:
    """A team API whose model learned from the leak: "no default" to everyone, as the starter
    serves such a model, until `phase`; from then on (it found out) it sees the risk."""

    async def handle(req: Request, writer: asyncio.StreamWriter) -> None:
        rid = req.json()["id"]
        with engine.connect() as conn:
            phase_index, p_default = conn.execute(
                sa.select(schema.requests.c.phase_index, schema.requests.c.p_default).where(
                    schema.requests.c.request_id == rid
                )
            ).one()
        found = phase is not None and phase_index >= phase
        pred = int(p_default > 0.2) if found else 0
        writer.write(response(200, json.dumps({"pred": pred}).encode()))

    return handle


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    """A real short game (tests/games/fast.toml, two phases) with seven teams, then exported.

    The teams: one that knows every label, one always wrong, one always answering 1, one
    answering HTTP 500, one whose API is down, one that served a model trained with the
    leak and found out when the second phase began, and one that never found out.
    """
    tmp = tmp_path_factory.mktemp("game")
    db = f"sqlite:///{tmp / 'game.sqlite'}"
    game_server("--db", db, "init", "--game", str(FAST_GAME))
    engine = sa.create_engine(db)
    with engine.begin() as conn:  # the same applicants every run: the test's own secret
        conn.execute(sa.update(schema.stream_secret).values(secret=TEST_SECRET))
    apis = TeamAPIs()
    port = free_port()
    try:
        urls = {
            "peeker": apis.start(peeking(engine)).url,
            "contrarian": apis.start(peeking(engine, flip=True)).url,
            "always one": apis.start(json_answer({"pred": 1})).url,
            "broken": apis.start(json_answer({"error": "boom"}, status=500)).url,
            "down": f"http://127.0.0.1:{refused_port()}/predict",
            "found the leak": apis.start(leaky_until(engine, 1)).url,
            "kept the leak": apis.start(leaky_until(engine, None)).url,
        }
        for name, url in urls.items():
            game_server("--db", db, "teams", "add", name, "--url", url)
        with open(tmp / "run.log", "w") as log:
            run = subprocess.Popen(
                [sys.executable, "-m", "game_server", "--db", db, "run"]
                + ["--port", str(port), "--start"],
                stderr=log,
            )
            try:
                wait_until_finished(f"http://127.0.0.1:{port}", run)
            finally:
                run.send_signal(signal.SIGTERM)
                run.wait(30)
    finally:
        apis.close()
        engine.dispose()
    game_server("--db", db, "export", "--out", str(tmp / "export"))
    return db, tmp / "export"


def wait_until_finished(game_url: str, run: subprocess.Popen, limit: float = 60.0) -> None:
    """Poll the leaderboard until the game has finished."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert run.poll() is None, "game-server run exited early"
        try:
            state = requests.get(f"{game_url}/api/leaderboard", timeout=2).json()["game"]["state"]
        except requests.RequestException:
            state = None
        if state == "finished":
            return
        time.sleep(0.2)
    raise AssertionError("the game did not finish in time")


@pytest.mark.slow
def test_debrief_charts_a_real_game_from_its_export(tmp_path, played):
    _, export_dir = played
    out = tmp_path / "out"
    run_notebook(
        DEBRIEF,
        tmp_path,
        DEBRIEF_EXPORT_DIR=str(export_dir),
        DEBRIEF_OUTPUT_DIR=str(out),
        DEBRIEF_WINDOW_SECONDS="10",  # longer than a phase: one window a phase
    )
    summary = json.loads((out / "summary.json").read_text())
    reference = summary["reference"]
    standings = {row["team"]: row for row in summary["standings"]}
    n = reference["requests"]
    assert n >= 30 and summary["has_oracle"]
    # Every team saw every scored request; the totals follow from what each API did.
    assert {row["requests"] for row in standings.values()} == {n}
    assert standings["peeker"]["points"] == n and standings["peeker"]["accuracy"] == 1.0
    assert standings["peeker"]["rank"] == 1
    assert standings["contrarian"]["points"] == 0 and standings["contrarian"]["accuracy"] == 0.0
    assert standings["broken"]["points"] == -n and standings["broken"]["failure_rate"] == 1.0
    assert standings["down"]["points"] == -n and standings["broken"]["rank"] == 6
    # The oracle lies between the baseline and the team that knows the labels.
    assert reference["baseline_points"] < reference["oracle_points"] < n
    assert 0.5 * n < reference["oracle_points"]
    # "always one" scores the defaults it met; the export's own results agree.
    results = json.loads((export_dir / "results.json").read_text())
    ones = sum(r["points"] for r in results if r["team"] == "always one")
    assert standings["always one"]["points"] == ones
    # Phase by phase: two phases, seven teams; failures by reason.
    assert len(summary["phases"]) == 2 and len(summary["per_phase"]) == 14
    assert sum(row["requests"] for row in summary["phases"]) == n
    failures = {row["team"]: row for row in summary["failures"]}
    assert failures["broken"]["http_status"] == n and failures["down"]["connect_error"] == n
    assert set(failures) == {"broken", "down"}
    for figure in ("standings.png", "points_over_time.png", "per_phase.png", "failures.png"):
        assert (out / figure).stat().st_size > 5000


@pytest.mark.slow
def test_debrief_shows_who_used_the_leak_and_when_they_found_out(tmp_path, played):
    """From the game's own tables: answers of "no default" to everyone while applicants default."""
    _, export_dir = played
    out = tmp_path / "out"
    run_notebook(
        DEBRIEF,
        tmp_path,
        DEBRIEF_EXPORT_DIR=str(export_dir),
        DEBRIEF_OUTPUT_DIR=str(out),
        DEBRIEF_WINDOW_SECONDS="10",
    )
    summary = json.loads((out / "summary.json").read_text())
    leak = {row["team"]: row for row in summary["leak"]}
    assert {team for team, row in leak.items() if row["used_leak"]} == {
        "found the leak",
        "kept the leak",
    }
    found, kept = leak["found the leak"], leak["kept the leak"]
    assert found["from_minute"] == kept["from_minute"] == 0.0 and found["leaky_windows"] == 1
    assert found["found_out_in"] == "2. messy input" and 0 < found["found_out_minute"] < 0.05
    assert kept["found_out_in"] == "never" and kept["leaky_windows"] == 2
    assert kept["found_out_minute"] is None
    # Always 1, always wrong, the peeker and the APIs that never answered: no leak.
    assert not any(leak[team]["used_leak"] for team in ("always one", "peeker", "broken", "down"))
    assert (out / "leak.png").stat().st_size > 5000
    assert "found the leak" in (out / "leak.csv").read_text()
    # The honest answers against those given with the leak, phase by phase: in each phase
    # the leak's are the answers of the teams that had it then ("kept the leak" alone in
    # the second, which "found the leak" answered without it).
    by_phase = {row["phase"]: row for row in summary["leak_by_phase"]}
    accuracy = {(row["team"], row["phase"]): row["accuracy"] for row in summary["per_phase"]}
    assert list(by_phase) == ["1. warm-up", "2. messy input"]
    for phase, row in by_phase.items():
        assert row["with the leak"] == pytest.approx(accuracy["kept the leak", phase])
        assert row["honest"] != pytest.approx(row["with the leak"])
        assert row["baseline"] > 0
    assert summary["retraining"] == []  # this game has no drift phase


@pytest.mark.slow
def test_debrief_shows_what_retraining_bought_in_the_drift_phase(tmp_path, played):
    """The played game's second phase read as a drift phase: each team's accuracy in its
    first and last third, and the gain; the teams that never answered are not in it."""
    _, export_dir = played
    drift_export = tmp_path / "export"
    shutil.copytree(export_dir, drift_export)
    phases = pd.read_csv(drift_export / "phases.csv")
    phases.loc[1, "kind"] = "drift"
    phases.to_csv(drift_export / "phases.csv", index=False)
    out = tmp_path / "out"
    run_notebook(
        DEBRIEF,
        tmp_path,
        DEBRIEF_EXPORT_DIR=str(drift_export),
        DEBRIEF_OUTPUT_DIR=str(out),
        DEBRIEF_WINDOW_SECONDS="10",
    )
    summary = json.loads((out / "summary.json").read_text())
    retraining = {row["team"]: row for row in summary["retraining"]}
    assert set(retraining) == {
        *("peeker", "contrarian", "always one", "found the leak", "kept the leak")
    }
    assert retraining["peeker"]["first_third"] == retraining["peeker"]["last_third"] == 1.0
    assert retraining["contrarian"]["last_third"] == 0.0
    assert retraining["peeker"]["gain"] == 0.0
    baseline = summary["phases"][1]["baseline_accuracy"]
    assert all(row["baseline"] == pytest.approx(baseline) for row in retraining.values())


@pytest.mark.slow
def test_monitoring_follows_a_team_of_a_real_game(tmp_path, played):
    """The game database of a real game, a team picked by name: its failures as logged."""
    db, _ = played
    out = tmp_path / "out"
    run_notebook(
        MONITORING,
        tmp_path,
        MONITORING_GAME_DATABASE_URL=db,
        MONITORING_TEAM="broken",
        MONITORING_OUTPUT_DIR=str(out),
    )
    summary = json.loads((out / "drift.json").read_text())
    assert summary["team"] == "broken" and len(summary["teams"]) == 7
    phases = summary["team_by_phase"]
    assert len(phases) == 2 and {row["answered"] for row in phases} == {0}
    assert sum(row["failed"] for row in phases) == summary["requests"] > 0
    assert list(summary["failures"]) == ["http_status"]
    assert sum(summary["oddities"].values()) > 0  # the second phase's messy input, as sent


@pytest.mark.slow
def test_debrief_reads_the_game_database_too(tmp_path, played):
    db, export_dir = played
    out = tmp_path / "out"
    run_notebook(
        DEBRIEF,
        tmp_path,
        DEBRIEF_EXPORT_DIR="",
        DEBRIEF_GAME_DATABASE_URL=db,
        DEBRIEF_OUTPUT_DIR=str(out),
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["source"] == str(out / "export")
    assert (out / "export" / "results.csv").read_text() == (export_dir / "results.csv").read_text()
    standings = {row["team"]: row["points"] for row in summary["standings"]}
    assert standings["peeker"] == summary["reference"]["requests"] > 0


@pytest.mark.slow
def test_reference_solution_measures_the_leak_and_retrains_after_the_world_changed(
    tmp_path, workshop
):
    """A team database with warm-up requests, then the drift phase, every label revealed."""
    url = team_database(tmp_path / "team.sqlite", workshop, [(0, 500), (DRIFT, 2000)])
    out = tmp_path / "out"
    run_notebook(
        REFERENCE,
        tmp_path,
        REFERENCE_TEAM_DATABASE_URL=url,
        REFERENCE_OUTPUT_DIR=str(out),
        REFERENCE_GAME_URL="",
        REFERENCE_RETRAIN_ROUNDS="1",
    )
    summary = json.loads((out / "summary.json").read_text())
    leak = summary["leak"]
    assert leak["with_leak_holdout"] > leak["without_leak"] + 0.03  # looks better ...
    assert leak["with_leak_in_production"] < leak["without_leak"]  # ... and is worse
    assert 0.78 <= summary["holdout"]["accuracy"] <= 0.9
    assert 0.35 <= summary["holdout"]["best_threshold"] <= 0.65
    assert summary["robustness"]["requests"] >= 500 and summary["robustness"]["errors"] == 0
    retrained = summary["retraining"][0]
    assert retrained["game_rows"] == 2500 and retrained["recent_rows"] == 500
    scores = retrained["scores"]
    # After the world changed, retraining on the game's labels wins on recent requests.
    assert retrained["deployed"] and max(scores.values()) > scores["served"] + 0.03, scores
    model = summary["saved_model"]
    assert model["version"] == retrained["version"] and 0.0 <= model["example_p_default"] <= 1.0
    pipeline, metadata = load_model(model["path"])
    assert metadata["retrained"] == retrained["best"] and hasattr(pipeline, "predict_proba")
