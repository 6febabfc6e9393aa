"""Fetch the true outcomes the game has revealed into your team database.

    python feedback.py

The game reveals the label of each request about a minute after it sent it. This stores
the new ones in the `labels` table, beside the `predictions` your API logged, and says
how many of your requests now have their label. Run it as often as you like: it only
fetches what is new. The notebook's last section does the same before retraining.

When something is wrong (the game unreachable, no team token, the database down) it
prints one line saying what to do, and exits with 1.
"""

import sys

import sqlalchemy.exc
from modules import database


def main() -> int:
    """Pull the new labels; print one line either way."""
    try:
        engine = database.engine_from_env()
        new = database.pull_feedback(engine)
        labelled = len(database.training_frame(engine, label="default"))
    except database.FeedbackError as exc:
        print(f"feedback: {exc}", file=sys.stderr)
        return 1
    except (sqlalchemy.exc.ArgumentError, ImportError):  # not the URL: it holds a password
        print(
            "feedback: DATABASE_URL in .env is not a database URL (see your handout)",
            file=sys.stderr,
        )
        return 1
    except sqlalchemy.exc.SQLAlchemyError as exc:  # the database is down or refused us
        reason = str(exc).splitlines()[0]  # SQLAlchemy's messages go on for several lines
        print(
            f"feedback: cannot use your database (DATABASE_URL in .env): {reason}", file=sys.stderr
        )
        return 1
    print(f"feedback: {new} new labels; {labelled} of your logged requests now have their label")
    return 0


if __name__ == "__main__":
    sys.exit(main())
