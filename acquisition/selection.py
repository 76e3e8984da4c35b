"""Turning acquisition scores into a batch of pairs, with a uniform floor and logged
propensities, and BAL-PM's prompt-diversity term.

- ``softrank_probabilities``: the ``k``-th best candidate gets weight ``k**-beta`` (stochastic
  batch acquisition, Kirsch et al., 2023: robust to the scale of the score, close to top-k at
  ``beta = 1`` without its redundancy), mixed with a uniform floor so every candidate keeps a
  probability of at least ``floor / n``.
- ``sample_batch``: a batch drawn without replacement from those probabilities by the
  Gumbel-top-k trick, at most one pair per prompt, each with its single-draw probability
  (the propensity a downstream estimator weights by).
- ``PromptDiversity``: BAL-PM's entropy term (Melo et al., 2024) with a 1-nearest-neighbour
  estimator: a candidate prompt scores the log of its distance to the nearest prompt already
  labelled, so acquiring it raises the entropy of the labelled prompt distribution most.
"""

from __future__ import annotations

import numpy as np


def rank_weights(scores: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """``rank ** -beta`` normalised to sum to 1 (rank 1: the highest score; a missing score
    ranks last; equal scores are ranked in index order)."""
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    if n == 0:
        return scores
    order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(1, n + 1)
    weight = ranks ** -beta
    return weight / weight.sum()


def softrank_probabilities(scores: np.ndarray, floor: float, beta: float = 1.0) -> np.ndarray:
    """Probabilities `(n,)` from scores (higher is better): ``rank_weights`` mixed with a
    uniform floor, so every candidate keeps at least ``floor / n``."""
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    if n == 0:
        return scores
    if not 0.0 < floor <= 1.0:
        raise ValueError(f"floor must be in (0, 1]; got {floor}")
    return floor / n + (1.0 - floor) * rank_weights(scores, beta)


def sample_batch(probabilities: np.ndarray, size: int, rng: np.random.Generator,
                 groups: np.ndarray | None = None, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``size`` distinct candidates drawn without replacement (Gumbel-top-k), at most one per
    group (prompt) when ``groups`` is given, skipping ``exclude`` (a boolean mask); returns the
    chosen indices and their single-draw probabilities."""
    p = np.asarray(probabilities, dtype=float)
    keys = np.log(np.clip(p, 1e-300, None)) + rng.gumbel(size=len(p))
    if exclude is not None:
        keys[exclude] = -np.inf
    order = np.argsort(-keys)
    chosen: list[int] = []
    seen: set[int] = set()
    for i in order:
        if not np.isfinite(keys[i]) or len(chosen) == size:
            break
        if groups is not None:
            g = int(groups[i])
            if g in seen:
                continue
            seen.add(g)
        chosen.append(int(i))
    idx = np.asarray(chosen, dtype=np.int64)
    return idx, p[idx] / p.sum()


class PromptDiversity:
    """The distance from each candidate prompt to the nearest labelled prompt (cosine distance
    on normalised embeddings), updated as prompts are labelled."""

    def __init__(self, prompt_embeddings: np.ndarray):
        e = np.asarray(prompt_embeddings, dtype=np.float32)
        self.e = e / np.clip(np.linalg.norm(e, axis=1, keepdims=True), 1e-12, None)
        self.nearest = np.full(len(e), 2.0, dtype=np.float32)  # the largest cosine distance

    def add(self, prompt_indices) -> None:
        for i in np.unique(np.asarray(prompt_indices, dtype=np.int64)):
            self.nearest = np.minimum(self.nearest, 1.0 - self.e @ self.e[i])

    def scores(self) -> np.ndarray:
        """Per prompt: log distance to the nearest labelled prompt (higher: more novel)."""
        return np.log(np.clip(self.nearest, 1e-6, None))


def standardise(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit SD (a constant vector becomes zeros), so two scores can be added."""
    x = np.asarray(x, dtype=float)
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)
