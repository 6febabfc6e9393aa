"""Micro-batching: the requests that arrive together go through the model together.

Why. The game sends requests in bursts: at the peak, 20 at the same instant, to every
team's API at once. A scikit-learn `Pipeline` pays a fixed cost on every call, whatever
the number of rows (the `ColumnTransformer` splits the table, each step checks and copies
its input); for the starter's model that fixed cost is nearly all of it, so one row costs
about what a hundred do. Called once per request, a burst pays it 20 times, one after the
other (one Python process runs one thread at a time, the GIL), and the last answer of the
burst waits for all of them. Model servers do what this module does: MLServer ("adaptive
batching") and Triton ("dynamic batching") gather the requests that arrive within a few
milliseconds and call the model once for all of them.

How. A request's thread hands its cleaned row (`features.clean_row`) to
`Batcher.predict_proba` and waits. One background thread takes the first waiting row and
waits up to BATCH_WINDOW_MS for company. A row alone goes to the model then. Once company
came it is a burst, and the batch stays open as long as rows keep coming: it waits up to
two windows for each next one. It closes when none came in that time, at BATCH_MAX_SIZE
rows, or after MAX_WAIT_WINDOWS windows in all (rows that never stop coming still get
their answers). Why not one window from the first row: a burst does not arrive at one
instant. The game sends 20 requests to every team, one after the other, so at the peak
an API's 20 arrive milliseconds apart over tens of milliseconds, unevenly (the APIs
share the CPU); a fixed window would cut them into several batches. Then the thread makes
one table of the rows, calls `predict_proba` once and gives each request its own
probability. While it predicts, the next requests queue up for the next batch.

A row that breaks the model fails only its own request: when a batch raises, its rows are
predicted one by one, and each request gets its own answer or its own error (main.py
answers the fallback for it, as before).

Turn it off with BATCH_WINDOW_MS=0 in `.env`: each request then calls the model itself,
in its own thread, on a one-row table (what the starter did before).
"""

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import sklearn
from sklearn.pipeline import Pipeline

from modules.features import rows_frame

log = logging.getLogger(__name__)

# A batch waits at most this many windows in all (100 ms with the default 5 ms window).
MAX_WAIT_WINDOWS = 20


def predict_rows(pipeline: Pipeline, metadata: dict, rows: list[dict]) -> list[float]:
    """The probability of class 1 for each cleaned row, in one call of the model."""
    # `clean_row` made every number finite or missing (NaN), and the pipeline's settings
    # were checked when it was fitted: scikit-learn need not check them again on each
    # call (a seventh of the model's time on a batch).
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        probas = [float(p) for p in pipeline.predict_proba(rows_frame(rows, metadata))[:, 1]]
    if len(probas) != len(rows):
        raise ValueError(f"the model answered {len(probas)} rows for {len(rows)}")
    return probas


@dataclass
class _Job:
    """One request's row, the model it was cleaned for, and where its answer goes."""

    pipeline: Pipeline
    metadata: dict
    row: dict
    answer: Future = field(default_factory=Future)


class Batcher:
    """Predicts rows in batches on one background thread; `predict_proba` waits for its row."""

    def __init__(self, window_ms: float = 5.0, max_size: int = 64):
        """Start the batching thread; `window_ms` 0 means no batching and no thread."""
        self.window = window_ms / 1000
        self.max_size = max_size
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()  # no row is queued after close() has been asked
        self._closed = False
        self._thread = None
        if self.window > 0:
            self._thread = threading.Thread(target=self._run, name="model-batcher", daemon=True)
            self._thread.start()

    def predict_proba(
        self, pipeline: Pipeline, metadata: dict, row: dict, timeout: float = 30.0
    ) -> float:
        """The probability of class 1 for one cleaned row; raises what the model raised for it."""
        job = _Job(pipeline, metadata, row)
        with self._lock:
            thread = self._thread
            batching = thread is not None and thread.is_alive() and not self._closed
            if batching:
                self._queue.put(job)
        if not batching:  # batching off, or the API is stopping: predict here, alone
            return predict_rows(pipeline, metadata, [row])[0]
        return job.answer.result(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Answer the rows still queued, then stop the thread (waiting at most `timeout` s)."""
        with self._lock:
            self._closed = True
            self._queue.put(None)  # the thread stops when it reaches this
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        """Collect and answer batches until close() (its queued rows answered first)."""
        stopping = False
        while not stopping:
            batch, stopping = self._collect()
            groups: dict[int, list[_Job]] = {}  # a model reloaded mid-batch: two groups
            for job in batch:
                groups.setdefault(id(job.pipeline), []).append(job)
            for jobs in groups.values():
                self._answer(jobs)

    def _collect(self) -> tuple[list[_Job], bool]:
        """The first waiting job and those that follow it closely; True when stopping."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        deadline = time.monotonic() + self.window * MAX_WAIT_WINDOWS
        wait_next = self.window  # a request alone waits one window for company
        while len(batch) < self.max_size:
            # Rows already waiting are taken even at the deadline, without waiting.
            wait = min(wait_next, deadline - time.monotonic())
            try:
                job = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return batch, True
            batch.append(job)
            wait_next = 2 * self.window  # company came: a burst, whose rows come unevenly
        return batch, False

    def _answer(self, jobs: list[_Job]) -> None:
        """Predict the jobs' rows in one call; on an error, one by one: only a bad row fails."""
        started = time.perf_counter()
        try:
            probas = predict_rows(jobs[0].pipeline, jobs[0].metadata, [job.row for job in jobs])
        except Exception as exc:
            if len(jobs) == 1:
                jobs[0].answer.set_exception(exc)
                return
            log.warning("batch failed rows=%d error=%r: predicting one by one", len(jobs), exc)
            for job in jobs:
                self._answer([job])
            return
        for job, proba in zip(jobs, probas, strict=True):
            job.answer.set_result(proba)
        log.debug("batch rows=%d ms=%.2f", len(jobs), (time.perf_counter() - started) * 1000)
