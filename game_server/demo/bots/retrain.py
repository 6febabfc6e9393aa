"""The careful team's habit: pull the game's feedback and retrain when it pays off.

A thread in the bot's process does what the notebook's last section teaches, every few
seconds: `pull_feedback` stores the labels the game revealed, `training_frame` joins them
with the requests the API logged, and a candidate model trained on the training data
plus the recent labelled requests (weighted up: they show today's world) replaces the
served one only when it beats it on the newest requests it has not seen. `save_model`
writes the file atomically and the API reloads it by itself (model file mtime).
"""

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from modules import database
from modules.features import clean_frame
from modules.model_io import load_model, save_model
from modules.train import train_pipeline

from game_server.demo.bots.training import careful_classifier

log = logging.getLogger("retrain")

EVERY_SECONDS = 3.0  # how often the feedback is pulled
MIN_ROWS = 100  # labelled requests before the first try
STEP_ROWS = 60  # new labelled requests between two tries
WINDOW_ROWS = 600  # the recent requests a candidate learns from (and is checked on)
CHECK_SHARE = 0.2  # the newest share of the window, held out to compare the models
RECENT_WEIGHT = 10.0  # one recent request counts as much as this many training rows


class Retrainer(threading.Thread):
    """Pulls feedback and retrains the served model while the API runs."""

    def __init__(self, model_path: str | Path, train_csv: str, label: str, database_url: str):
        """Prepare; `start()` runs it as a daemon thread beside the API."""
        super().__init__(name="retrain", daemon=True)
        self.model_path = model_path
        self.label = label
        self.training = pd.read_csv(train_csv)
        self.engine = database.engine_from_env(database_url)
        # The training data's description: game requests are cleaned against it.
        self.metadata = load_model(model_path)[1]
        self.tried_at_rows = 0
        self.deployed = 0

    def run(self) -> None:
        """Every few seconds: pull feedback, maybe retrain. Errors are logged, never fatal."""
        while True:
            time.sleep(EVERY_SECONDS)
            try:
                self.step()
            except database.FeedbackError as exc:
                log.warning("feedback not pulled: %s", exc)
            except Exception:
                log.exception("retraining step failed")

    def step(self) -> bool:
        """One pull and, with enough new labels, one retraining try; True if deployed."""
        database.pull_feedback(self.engine)
        frame = database.training_frame(self.engine, label=self.label)
        if len(frame) < MIN_ROWS or len(frame) - self.tried_at_rows < STEP_ROWS:
            return False
        self.tried_at_rows = len(frame)
        window = frame.iloc[-WINDOW_ROWS:]
        cut = int(len(window) * (1 - CHECK_SHARE))
        learn, check = window.iloc[:cut], window.iloc[cut:]
        served, _ = load_model(self.model_path)
        x_check, y_check = clean_frame(check, self.metadata), check[self.label].astype(int)
        served_accuracy = float((served.predict(x_check) == y_check).mean())
        rows = pd.concat([self.training, learn], ignore_index=True)
        weights = np.r_[np.ones(len(self.training)), np.full(len(learn), RECENT_WEIGHT)]
        candidate, metadata = train_pipeline(
            rows,
            label=self.label,
            classifier=careful_classifier(),
            sample_weight=weights,
            metadata=self.metadata,
        )
        candidate_accuracy = float((candidate.predict(x_check) == y_check).mean())
        better = candidate_accuracy > served_accuracy
        log.info(
            "retrain tried labelled=%d learn=%d check=%d served_accuracy=%.3f "
            "candidate_accuracy=%.3f deployed=%s",
            len(frame),
            len(learn),
            len(check),
            served_accuracy,
            candidate_accuracy,
            better,
        )
        if better:
            self.deployed += 1
            scores = {
                "recent_accuracy_before": round(served_accuracy, 4),
                "recent_accuracy_after": round(candidate_accuracy, 4),
                "game_rows": len(learn),
            }
            version = f"careful-retrained-{self.deployed}"
            save_model(
                candidate, {**metadata, "version": version, "scores": scores}, self.model_path
            )
        return better
