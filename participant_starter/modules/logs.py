"""Logging set-up: one line per record (`time level logger message`), to the terminal and a file."""

import logging
import logging.handlers
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class OneLineFormatter(logging.Formatter):
    """Folds tracebacks into the record's one line, so `grep` finds whole records."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "\\r").replace("\n", " | ")


def configure_logging(level: str = "INFO", log_file: str | Path | None = None) -> None:
    """Send every record to stderr and, when given, to a rotating file (bounded on disk)."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        # 3 files of 5 MB at most: a long game cannot fill the disk.
        handlers.append(
            logging.handlers.RotatingFileHandler(log_file, maxBytes=5_000_000, backupCount=3)
        )
    for handler in handlers:
        handler.setFormatter(OneLineFormatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level.upper())
    logging.getLogger("waitress.queue").setLevel(logging.WARNING)  # one line per busy moment
