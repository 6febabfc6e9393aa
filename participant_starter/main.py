"""Your team's API: `POST /predict` answers the customer, `GET /health` says it is up,
`GET /metrics` counts for Prometheus (modules/metrics.py).

Run it with a production server (waitress, several threads) on your port, PORT in .env,
the port the game calls:

    python main.py

Debugging only, on your debug port (single process, reloads on code changes, shows
tracebacks in the browser; too slow and fragile for the game's traffic, so never on PORT):

    flask --app main run --debug --port $DEBUG_PORT
"""

import errno
import json
import logging
import resource
import signal
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any, NoReturn

import click
import sqlalchemy.exc
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from modules import access, config, database, metrics
from modules.batching import Batcher
from modules.db_writer import BackgroundWriter
from modules.features import clean_row
from modules.logs import configure_logging
from modules.model_io import ModelHolder, ModelNotFound
from werkzeug.exceptions import HTTPException

log = logging.getLogger("api")
# Idle or slow connections (anyone on the server can open them) cost a socket, not a
# thread: room for a couple of thousand beside the game's (poll(), not select(), which
# stops at 1,024), idle ones closed after 30 s. The game keeps its own 1.5 s idle at most.
CONNECTIONS = {
    "connection_limit": 2000,
    "channel_timeout": 30,
    "cleanup_interval": 5,
    "asyncore_use_poll": True,
}
OPEN_FILES = 4096  # the connections, the model's and the database's files
api = Blueprint("api", __name__)


class StartupError(click.ClickException):
    """The API cannot start: the message says why and what to do, in one line.

    A click exception, so that `flask run` also prints it as one line, not a traceback.
    """


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app: settings from the environment / `.env`, then `overrides` (tests)."""
    settings = {**config.load_settings(), **(overrides or {})}
    try:
        config.check_settings(settings)
        engine = database.engine_from_env(settings["DATABASE_URL"])
    except config.SettingsError as exc:
        raise StartupError(str(exc)) from exc
    except (sqlalchemy.exc.ArgumentError, ImportError) as exc:  # a typo, an unknown driver
        # Not the URL itself in the message: it holds your database password.
        raise StartupError(
            f"DATABASE_URL is not a database URL the starter can use ({type(exc).__name__}): "
            "postgresql+psycopg://... from your handout, or sqlite:///output/predictions.sqlite"
        ) from exc
    if not settings.get("TESTING"):  # the tests keep pytest's own log capture
        log_file = settings["LOG_FILE"] and config.resolve(settings["LOG_FILE"])
        configure_logging(settings["LOG_LEVEL"], log_file)
    try:
        # The model is loaded once, here: a missing file fails now, not on the first request.
        model = ModelHolder(
            config.resolve(settings["MODEL_PATH"]), float(settings["MODEL_CHECK_SECONDS"])
        )
    except (ModelNotFound, ValueError) as exc:  # ValueError: a file that is not a model
        raise StartupError(str(exc)) from exc
    app = Flask(__name__)
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = 1_000_000  # bytes; larger bodies get a 413
    app.extensions["model"] = model
    app.extensions["db_writer"] = BackgroundWriter(engine)
    window, size = float(settings["BATCH_WINDOW_MS"]), int(settings["BATCH_MAX_SIZE"])
    app.extensions["batcher"] = Batcher(window, size)  # modules/batching.py: why and how
    access.init_app(app, settings["TEAM_TOKEN"])  # /predict: the game and the team only
    app.register_blueprint(api)
    metrics.init_app(app)  # GET /metrics: counts for Prometheus (modules/metrics.py)
    return app


def _request_id(body: object) -> str:
    """The request's id: from the body, else the X-Request-ID header, else a new one."""
    value = body.get("id") if isinstance(body, dict) else None
    value = value if value is not None else request.headers.get("X-Request-ID")
    text = str(value)[:200] if value is not None else uuid.uuid4().hex
    # Any id must go into the log and the database: a lone surrogate ("\ud800", not
    # UTF-8) would break the log line, a NUL is refused by PostgreSQL. Keep them as text.
    return text.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")


def _not_json(constant: str) -> NoReturn:
    """NaN and Infinity are not JSON (Python accepts them; PostgreSQL does not)."""
    raise ValueError(f"{constant} is not JSON")


@api.post("/predict")
def predict() -> Response | tuple[Response, int]:
    """Answer one applicant with a prediction, whatever state its features are in."""
    started = time.perf_counter()
    try:
        body = json.loads(request.get_data(), parse_constant=_not_json)
    except (ValueError, RecursionError):  # not JSON (or not UTF-8, or absurdly nested)
        log.warning("request refused reason=body_not_json bytes=%d", request.content_length or 0)
        return jsonify(error='the body is not JSON; send {"id": ..., "features": {...}}'), 400
    request_id = _request_id(body)
    raw = body.get("features") if isinstance(body, dict) else None
    pipeline, metadata = current_app.extensions["model"].current()
    batcher = current_app.extensions["batcher"]  # predicts the requests of a burst together
    problems: list[str] = []
    # EXERCISE 1 BEGIN: clean `raw`, predict, build `answer`; on any error: the fallback
    try:
        row = clean_row(raw, metadata, problems)  # a dict of the model's features
        proba = batcher.predict_proba(pipeline, metadata, row)  # the probability of class 1
        # 0.5 maximises expected points when the probabilities are right; yours to tune.
        pred, fallback = int(proba >= metadata.get("threshold", 0.5)), False
    except Exception:
        # A bug must not cost -1: log it (with its traceback) and answer the majority class.
        log.exception("prediction failed id=%s: answering the fallback", request_id)
        pred, proba, fallback = int(metadata.get("majority_class", 0)), None, True
    answer = {
        "id": request_id,
        "pred": pred,
        "proba": None if proba is None else round(proba, 4),
        "model_version": metadata.get("version"),
    }
    if fallback:
        answer["fallback"] = True
    # EXERCISE 1 END
    metrics.record_prediction(pred, fallback, problems)
    latency_ms = (time.perf_counter() - started) * 1000
    log.info(
        "request id=%s latency_ms=%.2f pred=%d proba=%s fallback=%s cleaned=%s",
        request_id,
        latency_ms,
        pred,
        answer["proba"],
        fallback,
        ",".join(problems) or "-",
    )
    current_app.extensions["db_writer"].submit(
        {
            "request_id": request_id,
            "received_at": datetime.now(UTC),
            "features": raw,
            "pred": pred,
            "proba": proba,
            "model_version": answer["model_version"],
            "latency_ms": latency_ms,
            "fallback": fallback,
        }
    )
    return jsonify(answer)


@api.get("/health")
def health() -> Response:
    """Is the API up, which model does it serve, and is the database keeping up?"""
    _, metadata = current_app.extensions["model"].current()
    writer = current_app.extensions["db_writer"]
    return jsonify(
        status="ok",
        model_version=metadata.get("version"),
        features=metadata.get("features"),
        db={"queued": writer.queue.qsize(), "written": writer.written, "dropped": writer.dropped},
    )


@api.app_errorhandler(HTTPException)
def http_error(error: HTTPException) -> tuple[Response, int]:
    """Errors (404, 405, 413, ...) as one-line JSON reasons instead of HTML pages."""
    return jsonify(error=f"{error.code} {error.name}: {error.description}"), error.code or 500


def make_server(app: Flask, host: str, port: int, threads: int) -> Any:
    """The waitress server of the API on host:port (not yet serving)."""
    import waitress  # imported here: `flask run` and the tests of the app do not need it

    return waitress.create_server(
        app, host=host, port=port, threads=threads, ident="team-api", **CONNECTIONS
    )


def main() -> int:
    """Serve the API with waitress on PORT until stopped (Ctrl-C or a kill)."""
    try:
        app = create_app()
    except StartupError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    # Ctrl-C, `kill <pid>` (SIGTERM) and a closed terminal (SIGHUP) all stop the server
    # cleanly: it stops listening, then saves the queued database records.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: sys.exit(0))
    host, port, threads = app.config["HOST"], int(app.config["PORT"]), app.config["THREADS"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < OPEN_FILES:  # often 1,024 by default: too few for the connections above
        wanted = OPEN_FILES if hard == resource.RLIM_INFINITY else min(OPEN_FILES, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    writer = app.extensions["db_writer"]
    try:
        server = make_server(app, host, port, int(threads))
    except OSError as exc:  # the port is taken, or the address is not this machine's
        writer.close()
        if exc.errno == errno.EADDRINUSE:
            print(
                f"error: port {port} is in use: is your API already running? "
                "(tmux attach -t api) Stop it first, or check PORT in .env",
                file=sys.stderr,
            )
        else:
            print(
                f"error: cannot listen on {host}:{port}: {exc} (check HOST and PORT in .env)",
                file=sys.stderr,
            )
        return 1
    log.info("serving on http://%s:%s threads=%s", host, port, threads)
    try:
        server.run()  # until Ctrl-C or a signal
    finally:
        server.close()  # the port is free at once: a restarted API can take it
        app.extensions["batcher"].close()
        writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
