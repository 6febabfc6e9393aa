"""Saving and loading the model (the fitted pipeline and its metadata), and hot reloading.

A word of warning, because it matters in production: a `.pkl` file is a pickle, and
loading a pickle RUNS CODE from the file. Never load a model file you did not make
yourself or that could have been changed by someone else. `skops`
(https://skops.readthedocs.io) is a safer format for scikit-learn models: it refuses
types you have not trusted. The starter uses joblib (pickle) because it is the
scikit-learn default and the files here are your own.
"""

import json
import logging
import os
import platform
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.pipeline import Pipeline

log = logging.getLogger(__name__)


class ModelNotFound(FileNotFoundError):
    """There is no model file where the settings say (train one with the notebook first)."""


def library_versions() -> dict[str, str]:
    """The versions a model was trained with: load it with the same ones."""
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
    }


def save_model(pipeline: Pipeline, metadata: dict, path: str | Path) -> dict:
    """Save the pipeline with its metadata atomically; return the metadata as saved.

    The file is written beside the target and then renamed over it (`os.replace`), so a
    running API never reads a half-written model: that is what makes redeploying as
    simple as saving a new model file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    metadata = {
        **metadata,
        "version": metadata.get("version") or now.strftime("%Y%m%d-%H%M%S"),
        "trained_at": now.isoformat(timespec="seconds"),
        "libraries": library_versions(),
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    joblib.dump({"pipeline": pipeline, "metadata": metadata}, temporary)
    os.replace(temporary, path)
    # A readable copy of the metadata, for people (the API reads the one inside the model).
    path.with_suffix(".json").write_text(json.dumps(metadata, indent=2, default=str) + "\n")
    return metadata


def load_model(path: str | Path) -> tuple[Pipeline, dict]:
    """Load (pipeline, metadata) from a model file you trust (see the warning above)."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFound(
            f"no model file at {path}: run notebooks/1.0-train-model.ipynb to train one"
        )
    try:
        bundle = joblib.load(path)  # runs code from the file: only load your own models
    except Exception as exc:  # a broken file, or one saved with other library versions
        raise ValueError(
            f"cannot load the model at {path} ({type(exc).__name__}: {exc}): "
            "train and save it again with notebooks/1.0-train-model.ipynb"
        ) from exc
    if not isinstance(bundle, dict) or "pipeline" not in bundle or "metadata" not in bundle:
        raise ValueError(f"{path} is not a model saved by save_model (pipeline + metadata)")
    return bundle["pipeline"], bundle["metadata"]


class ModelHolder:
    """The model the API serves; it reloads the file by itself when a newer one is saved."""

    def __init__(self, path: str | Path, check_seconds: float = 2.0):
        """Load the model now (a missing file fails here, at start, not on a request)."""
        self.path = Path(path)
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._mtime = self.path.stat().st_mtime if self.path.exists() else None
        self.model = load_model(self.path)  # (pipeline, metadata), replaced as one
        self._next_check = time.monotonic() + check_seconds
        self._log_loaded()

    def current(self) -> tuple[Pipeline, dict]:
        """The (pipeline, metadata) to use for one request, after a cheap check for a new file."""
        if time.monotonic() >= self._next_check and self._lock.acquire(blocking=False):
            try:  # one thread checks; the others go on with the model they have
                self._next_check = time.monotonic() + self.check_seconds
                self.reload_if_changed()
            except Exception:  # a broken file must not break the answers: keep the old model
                log.exception("model reload failed path=%s: still serving the old model", self.path)
            finally:
                self._lock.release()
        return self.model

    def reload_if_changed(self) -> bool:
        """Load the model file again when it changed since the last look; True when it did.

        A file that cannot be loaded raises (ValueError) and the old model stays: the
        caller, `current`, logs the error and goes on serving.
        """
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return False  # the file is being replaced or was removed: keep the old model
        if mtime == self._mtime:
            return False
        self._mtime = mtime  # a broken file is tried once, not on every check
        # EXERCISE 5 BEGIN: load the new file (load_model), serve it (self.model), log it
        self.model = load_model(self.path)  # (pipeline, metadata), replaced as one
        self._log_loaded()
        # EXERCISE 5 END
        return True

    def _log_loaded(self) -> None:
        """One line saying which model is served."""
        metadata = self.model[1]
        log.info(
            "model loaded path=%s version=%s features=%s",
            self.path,
            metadata.get("version"),
            ",".join(metadata.get("features", [])),
        )
