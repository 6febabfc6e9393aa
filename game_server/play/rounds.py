"""A round's request row, drawn from the scenario, and the log lines of the game row's changes.

Pure helpers of the game loop (`loop.Game`), kept apart so the loop stays about its tasks.
"""

import logging
import time
from collections.abc import Sequence

from game_server.common.records import RequestRow
from game_server.scenario.gamefile import Phase, Settings
from game_server.scenario.stream import Scenario
from game_server.storage.games import GameRow

log = logging.getLogger(__name__)


def request_row(
    scenario: Scenario, settings: Settings, phase_index: int, seq: int, request_id: str
) -> RequestRow:
    """Draw the round's applicant: the request row as stored before it is sent."""
    a = scenario.draw(phase_index, seq)
    oracle = scenario.oracle_expected_points(a)
    baseline = scenario.baseline_expected_points(a)
    now = time.time()
    return {
        "seq": seq,
        "request_id": request_id,
        "phase_index": phase_index,
        "features": a.features,
        "oddities": list(a.oddities),
        "label": int(a.label),
        "p_default": a.p_default,
        "oracle_points": oracle,
        "baseline_points": baseline,
        "sent_at": now,
        "label_visible_at": now + settings.label_delay,
    }


def log_changes(old: GameRow, row: GameRow, phases: Sequence[Phase]) -> None:
    """Log what changed from the game row `old` to `row`: state, phase, freeze."""
    if old.state != row.state:
        log.info("game state changed from=%s to=%s", old.state, row.state)
    if old.phase_index != row.phase_index or (old.state == "lobby" and row.state == "running"):
        p = phases[min(row.phase_index, len(phases) - 1)]
        log.info(
            "phase started index=%d name=%s kind=%s duration=%gs rate=%g burst=%d",
            row.phase_index,
            p.name,
            p.kind,
            p.duration,
            p.rate,
            p.burst,
        )
    if old.frozen != row.frozen:
        log.info("leaderboard %s", "frozen" if row.frozen else "unfrozen")
