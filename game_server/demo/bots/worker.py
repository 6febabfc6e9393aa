"""A bot's process: `python -m game_server.demo.bots.worker train|serve ...`.

`train` fits one kind of model with the starter's training code and saves it. `serve`
runs the starter's API for one variant: the starter's own `main.main()` (waitress) for
most, Flask's development server for `devserver`, with the careful team's retraining
thread beside it. The starter's settings (PORT, MODEL_PATH, DATABASE_URL, LOG_FILE,
GAME_URL, TEAM_TOKEN) come from the environment, as in a team's `.env`.

With `--watch-stdin` the process exits by itself when its parent (the demo) goes away:
the demo holds the other end of stdin, and end-of-file means the demo is gone
(`supervisor.end_with_stdin`, as every child of the game).
"""

import argparse
import logging
import signal
import sys
import time

from game_server.common.supervisor import end_with_stdin
from game_server.demo.bots import STARTER_DIR, VARIANTS, Variant

log = logging.getLogger("bot")


def serve_devserver(variant: Variant, settings: dict) -> int:
    """The starter's app on Flask's development server: one thread, one request at a time."""
    from main import create_app  # the starter's main.py
    from werkzeug.serving import make_server

    app = create_app()

    @app.before_request
    def heavy_model() -> None:
        """Stands for a model that needs this long per prediction (a big ensemble)."""
        time.sleep(variant.request_cost)

    # What `app.run(threaded=False)` / `flask run --without-threads` runs.
    server = make_server(settings["HOST"], int(settings["PORT"]), app, threaded=False)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log.info("serving with the Flask development server on port %s (single-threaded)", server.port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        app.extensions["db_writer"].close()
    return 0


def serve(args: argparse.Namespace) -> int:
    """Serve one variant until SIGTERM (or until the demo is gone)."""
    import main as starter_main  # the starter's main.py
    from modules import config

    variant = VARIANTS[args.variant]
    settings = config.load_settings()
    if args.watch_stdin:
        end_with_stdin()
    if variant.retrain:
        from game_server.demo.bots.retrain import Retrainer

        Retrainer(
            config.resolve(settings["MODEL_PATH"]), args.data, args.label, settings["DATABASE_URL"]
        ).start()
    if variant.server == "devserver":
        return serve_devserver(variant, settings)
    return starter_main.main()


def train(args: argparse.Namespace) -> int:
    """Train one kind of model and save it."""
    from modules.logs import configure_logging

    from game_server.demo.bots.training import train as train_model

    configure_logging("INFO")
    train_model(args.kind, args.data, args.label, args.out)
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (the demo builds it; people rarely need to)."""
    parser = argparse.ArgumentParser(prog="python -m game_server.demo.bots.worker")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one kind of bot model")
    t.add_argument("--kind", required=True, choices=("starter", "careful", "leaky"))
    t.add_argument("--out", required=True)
    s = sub.add_parser("serve", help="serve one bot variant (settings from the environment)")
    s.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    s.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")
    s.add_argument("--folder", help="the bot's folder (for people reading `ps`)")
    for p in (t, s):
        p.add_argument("--data", required=True, help="the training CSV")
        p.add_argument("--label", default="default")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run `train` or `serve` with the starter's folder importable, as in a team's home."""
    args = parse(argv)
    sys.path.insert(0, str(STARTER_DIR))
    return train(args) if args.command == "train" else serve(args)


if __name__ == "__main__":
    sys.exit(main())
