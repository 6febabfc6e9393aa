"""The one place that sets up logging: one line per record, `time level logger message`."""

import logging
import sys
from typing import TextIO

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class OneLineFormatter(logging.Formatter):
    """Folds multi-line messages and tracebacks into one line, so `grep` finds whole records."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text.replace("\r", "\\r").replace("\n", " | ")


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every logger's records to `stream` (stderr by default) as one-line records."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(OneLineFormatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries that log every connection drown the game's own records.
    for noisy in ("waitress.queue", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def first_line(error: BaseException | str, limit: int = 200) -> str:
    """The first non-empty line of an error's message, for one-line errors and log records.

    An exception without a message gives its type's name; empty text gives "".
    """
    text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(error).__name__ if isinstance(error, BaseException) else ""
    return lines[0][:limit]
