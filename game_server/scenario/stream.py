"""What the customer asks in each phase: applicants, their truth, the oracle and the baseline.

Applicants are generated in blocks of `BLOCK` with a random generator seeded from the
game's secret and (seed, phase index, block number), so `draw(phase_index, seq)` is
deterministic for one game: every shard and a restarted game send the same stream. A
small LRU cache keeps the recent blocks.

The secret (GAME.md §8a) is what keeps the stream private: the code and the game file are
readable by every user and the request id carries `seq`, so without it a team could
compute every applicant and label. The game loop keys its scenario with the game
database's secret (`keyed`); a scenario made without one draws with a fresh random secret
of its own, a stream nobody can recompute. The training data depends on its public
`data_seed` only.
"""

import copy
import logging
import secrets
import string
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from game_server.scenario import oddities, population
from game_server.scenario.gamefile import GameFile, Phase

log = logging.getLogger(__name__)

BLOCK = 256
CACHE_BLOCKS = 32
MIN_SECRET_HEX = 32  # 128 bits at least


def _secret_number(secret: str) -> int:
    """The secret (hex digits) as the entropy of the stream's seeds; never echoes it."""
    if len(secret) < MIN_SECRET_HEX or not all(c in string.hexdigits for c in secret):
        raise ValueError(
            f"the stream secret must be at least {MIN_SECRET_HEX} hex digits "
            f"({MIN_SECRET_HEX * 4} bits); run `game-server init` on a new database"
        )
    return int(secret, 16)


@dataclass(frozen=True)
class Applicant:
    """One request of the customer, with the truth the game keeps to itself."""

    features: dict[str, object]  # exactly the JSON "features" object sent (oddities applied)
    oddities: tuple[str, ...]  # the oddity kinds this request carries
    label: int  # the true outcome, 0 or 1
    p_default: float | None  # the hidden truth; None with the instructor's own data


def _json_value(value: Any, kind: str) -> int | float | str | None:
    """A plain JSON-ready Python value: int, float, str or None (never NaN or numpy)."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return str(value)


def _records(frame: pd.DataFrame, kinds: dict[str, str]) -> list[dict]:
    """The rows of `frame` as JSON-ready dicts (missing values as None)."""
    columns = {
        name: [_json_value(v, kind) for v in frame[name].astype(object).tolist()]
        for name, kind in kinds.items()
    }
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


class Scenario:
    """Draws the applicants of a game file, from the generator or an instructor's pool."""

    def __init__(self, game: GameFile, secret: str | None = None):
        """The game's scenario drawing with `secret` (hex), or a fresh random one."""
        self.game = game
        self._secret = _secret_number(secret or secrets.token_hex(32))  # 256 bits
        self.settings = game.settings
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[int, int], list[Applicant]] = OrderedDict()
        if self.settings.pool:
            from game_server.scenario import owndata

            self._pool, self._training = owndata.load_pool(
                self.settings.pool, self.settings.training_data, self.settings.label_column
            )
            self.label_column = self.settings.label_column
            self.kinds = owndata.feature_kinds(self._training, self.label_column)
            self.fields = owndata.oddity_fields(self._training, self.label_column)
        else:
            self._pool = None
            self._training = population.training_data(
                self.settings.data_rows, self.settings.data_seed
            )
            self.label_column = population.LABEL
            self.kinds = {f.name: f.kind for f in population.FEATURES}
            self.fields = [
                oddities.Field(f.name, f.kind != "category", f.low, f.high)
                for f in population.FEATURES
            ]
        rate = float(self._training[self.label_column].mean())
        self.training_default_rate = rate
        self.baseline_pred = int(rate > 0.5)  # the majority class of the training data
        log.info(
            "scenario ready source=%s phases=%d baseline_pred=%d train_default_rate=%.3f",
            "pool" if self._pool is not None else "generator",
            len(game.phases),
            self.baseline_pred,
            rate,
        )

    def keyed(self, secret: str) -> "Scenario":
        """This scenario drawing with `secret` (hex); the training data and pool are shared."""
        twin = copy.copy(self)
        twin._secret = _secret_number(secret)
        twin._lock = threading.Lock()
        twin._cache = OrderedDict()
        return twin

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The features a clean request carries, in order."""
        return tuple(self.kinds)

    def draw(self, phase_index: int, seq: int) -> Applicant:
        """The `seq`-th applicant of phase `phase_index` (deterministic in secret, seed, phase,
        seq)."""
        if not 0 <= phase_index < len(self.game.phases):
            raise IndexError(f"no phase {phase_index} (the game has {len(self.game.phases)})")
        if seq < 0:
            raise IndexError(f"seq must be >= 0, got {seq}")
        block, offset = divmod(seq, BLOCK)
        key = (phase_index, block)
        with self._lock:
            rows = self._cache.get(key)
            if rows is None:
                rows = self._make_block(phase_index, block)
                self._cache[key] = rows
                if len(self._cache) > CACHE_BLOCKS:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
        a = rows[offset]
        # a fresh dict, so a caller that edits the features cannot change the cached stream
        return Applicant(dict(a.features), a.oddities, a.label, a.p_default)

    def _make_block(self, phase_index: int, block: int) -> list[Applicant]:
        """Generate one block of applicants (vectorised), oddities applied row by row."""
        phase = self.game.phases[phase_index]
        # Everything drawn below (who applies, shift and drift, label, oddities) comes from
        # these seeds, and so depends on the secret.
        key = (self.settings.seed, phase_index, block)
        seeds = np.random.SeedSequence(self._secret, spawn_key=key)
        rng = np.random.default_rng(seeds)
        if self._pool is None:
            frame, p = population.draw(BLOCK, rng, phase.shift, phase.drift)
            probs: list[float | None] = [float(v) for v in p]
        else:
            frame = self._pool.iloc[rng.integers(len(self._pool), size=BLOCK)]
            probs = [None] * BLOCK
        labels = frame[self.label_column].astype(int).tolist()
        records = _records(frame, self.kinds)
        odd_rng = np.random.default_rng(seeds.spawn(1)[0])
        log.debug("generated block phase=%d block=%d size=%d", phase_index, block, BLOCK)
        return [
            self._applicant(phase, features, label, p, odd_rng)
            for features, label, p in zip(records, labels, probs, strict=True)
        ]

    def _applicant(
        self, phase: Phase, features: dict, label: int, p: Any, rng: np.random.Generator
    ) -> Applicant:
        """Wrap one row, applying oddities to the phase's share of requests."""
        kinds: tuple[str, ...] = ()
        if phase.oddity_share > 0 and phase.oddities and rng.random() < phase.oddity_share:
            features, kinds = oddities.apply(features, self.fields, phase.oddities, rng)
        return Applicant(features=features, oddities=kinds, label=label, p_default=p)

    def oracle_expected_points(self, a: Applicant) -> float | None:
        """Expected points of the oracle (predicts 1 when p > 0.5): max(p, 1 - p)."""
        if a.p_default is None:
            return None
        return max(a.p_default, 1.0 - a.p_default)

    def baseline_expected_points(self, a: Applicant) -> float:
        """Expected points of always predicting the training majority class.

        With own data there is no p; the baseline's points are then the realised ones.
        """
        if a.p_default is None:
            return float(a.label == self.baseline_pred)
        return a.p_default if self.baseline_pred == 1 else 1.0 - a.p_default

    def training_frame(self) -> pd.DataFrame:
        """The public training data (features, leak column and label), for monitoring."""
        return self._training.copy()
