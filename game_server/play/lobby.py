"""Who is ready: before the game starts and while it is paused, the game loop probes each
active team's health route every PROBE_SECONDS (GAME.md §8), so the board shows who is up
and the instructor starts when the room is. A probe is not scored and not a result: the
latest one per team is stored (`storage.health`), overwritten each time.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from game_server.common.logs import first_line
from game_server.play.customer import Customer, Health, Target
from game_server.play.writer import DbWriter
from game_server.storage import health
from game_server.storage.games import GameRow

log = logging.getLogger(__name__)

PROBE_SECONDS = 2.0  # from the start of one probe of every team to the next


class Prober:
    """Probes the teams' health routes while the game waits; logs who comes up or goes down."""

    def __init__(self, customer: Customer, writer: DbWriter, interval: float = PROBE_SECONDS):
        """Probe through the game's customer (its allow-list, time limit, no redirects)."""
        self.customer = customer
        self.writer = writer
        self.interval = interval
        self._up: dict[int, bool] = {}  # team id -> up at the last probe (to log changes)

    async def run(
        self, game: Callable[[], GameRow | None], targets: Callable[[], list[Target]]
    ) -> None:
        """Forever: probe the current targets every interval while the game's state says so."""
        while True:
            started = time.monotonic()
            try:
                current = targets()
                row = game()
                if row is not None and row.state in health.PROBED_STATES and current:
                    await self.probe(current)
            except Exception as exc:  # a database hiccup must not end the game
                log.error("probing the teams failed error=%s", first_line(exc))
            await asyncio.sleep(max(0.05, self.interval - (time.monotonic() - started)))

    async def probe(self, targets: Sequence[Target]) -> list[Health]:
        """Probe every target at once and store the results (one row per team)."""
        found = await asyncio.gather(*(self.customer.probe(t) for t in targets))
        now = time.time()
        rows = [
            {
                "team_id": h.team_id,
                "up": h.up,
                "reason": h.reason,
                "status_code": h.status_code,
                "checked_at": now,
            }
            for h in found
        ]
        await self.writer.transaction(health.store, rows)
        for h in found:
            if self._up.get(h.team_id) != h.up:
                log.info(
                    "team api %s team_id=%s reason=%s status=%s",
                    "up" if h.up else "down",
                    h.team_id,
                    h.reason,
                    h.status_code,
                )
            self._up[h.team_id] = h.up
        return list(found)
