"""A scorer learned for one reader from seeds, liked, disliked and ignored papers.

A linear model over the paper's sentence vector (MiniLM, the vector paperboy already
stores per paper): ``score = w . x + b``. It is fitted in closed form, a weighted ridge
regression of the label (1 for seeds and liked papers, 0 for disliked or ignored ones and
for the background), so retraining after a click is one (d+1) x (d+1) solve: a few
milliseconds, and the same history always gives the same model.

The background is the recent papers the reader did not label (only their mean and second
moment are needed): without it a reader with seeds and no negatives has nothing to
separate them from. Ignored papers (sent, never marked) count as weak negatives.

The ranker blends the learned score into the hybrid with a weight that grows with the
number of labels (:func:`blend_weight`): a handful of seeds barely moves the ranking, a
reader with dozens of verdicts is ranked mostly by what they taught it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Background",
    "ReaderModel",
    "blend_weight",
    "feature_blend_weight",
    "train_feature_model",
    "train_reader_model",
]

# BLEND_MAX (0, 1 or 2) was chosen on the dev profiles at even positions (0, 2, ...), replayed over
# 5 rounds (README "Learning over time"); the other values are round defaults, not tuned.
RIDGE = 1.0  # L2 penalty on w (vectors have unit length)
IGNORED_WEIGHT = 0.3  # a paper sent and never marked is a weak "not relevant"
BLEND_MAX = 1.0  # the learned score's weight once there are many labels...
BLEND_HALF = 10  # ...and the number of labels at which it reaches half of that
FEATURE_RIDGE = 1.0  # L2 penalty on the feature model's weights (its features are standardised)
# The feature model's weight once there are many labels (same growth). 0: off. Chosen on the dev
# profiles at even positions replayed over 5 rounds (README "Learning from each reader"): 0.5 and 1
# did no better than 0 with embeddings and worse without; the hybrid's Rocchio step and the vector
# model already learn what these features carry.
FEATURE_BLEND_MAX = 0.0


@dataclass(frozen=True, slots=True)
class Background:
    """What the reader did not label: the mean and second moment of recent paper vectors."""

    mean: np.ndarray
    second_moment: np.ndarray
    count: int

    @classmethod
    def of(cls, vectors: np.ndarray) -> Background:
        vectors = np.asarray(vectors, dtype=np.float64)
        if not len(vectors):
            d = vectors.shape[1]
            return cls(np.zeros(d), np.zeros((d, d)), 0)
        return cls(vectors.mean(axis=0), vectors.T @ vectors / len(vectors), len(vectors))


@dataclass(frozen=True, slots=True)
class ReaderModel:
    """Weights over the paper vector of one embedding model, and how many labels taught them."""

    model_id: str
    weights: np.ndarray
    bias: float
    labels: int

    def score(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(vectors, dtype=np.float64) @ self.weights + self.bias

    def to_bytes(self) -> bytes:
        """float32 little-endian weights, then the bias as float64 (for a BLOB/BYTEA column)."""
        return np.asarray(self.weights, dtype="<f4").tobytes() + struct.pack("<d", self.bias)

    @classmethod
    def from_bytes(cls, model_id: str, data: bytes, labels: int) -> ReaderModel:
        weights = np.frombuffer(data[:-8], dtype="<f4").astype(np.float64)
        (bias,) = struct.unpack("<d", data[-8:])
        return cls(model_id, weights, float(bias), labels)


def blend_weight(labels: int) -> float:
    """How much the learned score counts next to the hybrid's: 0 with no label, rising to BLEND_MAX."""
    return BLEND_MAX * labels / (labels + BLEND_HALF) if labels > 0 else 0.0


def train_reader_model(
    model_id: str,
    positives: np.ndarray,
    negatives: np.ndarray,
    background: Background,
    *,
    ignored: np.ndarray | None = None,
    ridge: float = RIDGE,
) -> ReaderModel | None:
    """Fit the reader's model; None without a single positive (nothing to learn towards).

    Every labelled paper weighs 1 (ignored ones IGNORED_WEIGHT); the background as a whole
    weighs as much as the positives, so a few seeds are not drowned by thousands of papers.
    """
    positives = np.asarray(positives, dtype=np.float64).reshape(-1, background.mean.shape[0])
    if not len(positives):
        return None
    d = positives.shape[1]
    rows = [positives, np.asarray(negatives, dtype=np.float64).reshape(-1, d)]
    weights = [np.ones(len(rows[0])), np.ones(len(rows[1]))]
    if ignored is not None and len(ignored):
        rows.append(np.asarray(ignored, dtype=np.float64).reshape(-1, d))
        weights.append(np.full(len(rows[-1]), IGNORED_WEIGHT))
    x = np.concatenate(rows)
    c = np.concatenate(weights)
    y = np.zeros(len(x))
    y[: len(positives)] = 1.0
    augmented = np.hstack([x, np.ones((len(x), 1))])
    gram = (augmented * c[:, None]).T @ augmented
    if background.count:
        mass = float(len(positives))
        moment = np.empty((d + 1, d + 1))
        moment[:d, :d] = background.second_moment
        moment[:d, d] = moment[d, :d] = background.mean
        moment[d, d] = 1.0
        gram += mass * moment
    gram[np.arange(d), np.arange(d)] += ridge  # the bias is not penalised
    solution = np.linalg.solve(gram, (augmented * (c * y)[:, None]).sum(axis=0))
    labels = len(positives) + len(rows[1]) + (len(rows[2]) if len(rows) > 2 else 0)
    return ReaderModel(model_id, solution[:d], float(solution[d]), labels)


def feature_blend_weight(labels: int) -> float:
    """The feature model's share next to the hybrid's signals, growing like :func:`blend_weight`."""
    return FEATURE_BLEND_MAX * labels / (labels + BLEND_HALF) if labels > 0 else 0.0


def train_feature_model(
    features: np.ndarray,
    positive: Sequence[int],
    negative: Sequence[int],
    background: Sequence[int],
    *,
    ridge: float = FEATURE_RIDGE,
) -> np.ndarray | None:
    """Weights (then the bias) of a ridge regression of the label over one interest's features.

    ``features`` has a row per paper (reader_features.py); ``positive`` and ``negative`` are the
    labelled rows, ``background`` the unlabelled papers of the pool, which together weigh as
    much as the positives (as in :func:`train_reader_model`). A (k+1) x (k+1) solve with k about
    ten: microseconds, and deterministic. None without a positive or a feature.
    """
    if not len(positive) or not features.shape[1]:
        return None
    k = features.shape[1]
    rows = np.concatenate([np.asarray(positive, int), np.asarray(negative, int), np.asarray(background, int)])
    weights = np.concatenate(
        [
            np.ones(len(positive) + len(negative)),
            np.full(len(background), len(positive) / max(len(background), 1)),
        ]
    )
    target = np.zeros(len(rows))
    target[: len(positive)] = 1.0
    x = np.hstack([features[rows], np.ones((len(rows), 1))])
    gram = (x * weights[:, None]).T @ x
    gram[np.arange(k), np.arange(k)] += ridge  # the bias is not penalised
    return np.linalg.solve(gram, (x * (weights * target)[:, None]).sum(axis=0))
