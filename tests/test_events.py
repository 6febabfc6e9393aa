"""The loop's result event (`play/events.py`): handlers in turn, one's error never stops the
others, and is logged once per distinct error."""

import asyncio
import logging

from game_server.play import events
from game_server.play.events import Event


def test_handlers_run_in_turn_and_coroutines_are_awaited_before_the_next():
    seen: list[str] = []

    async def store(value: int) -> None:
        await asyncio.sleep(0)  # the next handler must wait for this one
        seen.append(f"store {value}")

    event: Event[int] = Event("results")
    event.subscribe(lambda v: seen.append(f"window {v}"), store)
    event.subscribe(lambda v: seen.append(f"metrics {v}"))

    assert asyncio.run(event.fire(7)) is True
    assert seen == ["window 7", "store 7", "metrics 7"]


def test_a_failing_handler_does_not_stop_the_others_and_is_logged_once(caplog):
    seen: list[int] = []

    def broken(value: int) -> None:
        raise ValueError(f"bad value\nsecond line {value}")

    async def down(value: int) -> None:
        raise ConnectionError("database down")

    event: Event[int] = Event("results")
    event.subscribe(broken, down, seen.append)

    async def fire_all() -> list[bool]:
        return [await event.fire(v) for v in range(3)]

    with caplog.at_level(logging.ERROR, logger="game_server.play.events"):
        assert asyncio.run(fire_all()) == [False, False, False]
    assert seen == [0, 1, 2]  # the last handler got every value
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # one line per handler and distinct error, not per value
    assert "<locals>.broken error=ValueError: bad value repeated=0" in lines[0]
    assert "error=ConnectionError: database down" in lines[1]


def test_a_lasting_error_is_logged_again_with_how_often_it_happened(caplog, monkeypatch):
    def broken(value: int) -> None:
        raise RuntimeError("stuck")

    event: Event[int] = Event("results")
    event.subscribe(broken)

    async def fire(n: int) -> None:
        for v in range(n):
            await event.fire(v)

    with caplog.at_level(logging.ERROR, logger="game_server.play.events"):
        asyncio.run(fire(4))
        monkeypatch.setattr(events, "REPEAT_SECONDS", 0.0)  # its time has come
        asyncio.run(fire(1))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[1].endswith("error=RuntimeError: stuck repeated=3")
