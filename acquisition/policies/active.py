"""Active acquisition: spend labels where the reward model's ensemble disagrees most.

Scores are computed off the request path: after each retrain the worker stores, in the
checkpoint, the ensemble's disagreement about every base pair of the pool
(``acquisition_scores.npz``). The policy samples a base pair from the mixture
``uniform_share * uniform + (1 - uniform_share) * score / sum(score)``, so every pair keeps a
propensity of at least ``uniform_share`` times its uniform probability, and then switches
attributes at random like ``randomised_attributes``. Disagreement-based selection follows
deep-ensemble active learning for preferences (BAL-PM, Melo et al., 2024); the uniform slice
keeps a random control so the gain can be measured.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquisition.core.errors import ConfigError
from acquisition.core.pool import PoolSnapshot
from acquisition.design import DesignScores, design_points
from acquisition.editors import DEFAULT_ATTRIBUTES, edit_seed, get_editor
from acquisition.policies.policy import (
    AnnotatorContext,
    Policy,
    Proposal,
    ProposedSide,
    arm_name,
    coin_flip_probability,
    on_set,
    register_policy,
)
from acquisition.policies.randomised import RandomisedAttributesConfig


@dataclass(frozen=True)
class AcquisitionScores:
    """Disagreement per unordered base pair, from one model version."""

    version: str
    scores: dict[tuple[int, int, int], float]  # (prompt_id, low response id, high response id) -> score


@dataclass
class ActiveConfig:
    # share of pairs drawn uniformly at random (the floor on every pair's probability)
    uniform_share: float = 0.2
    # attributes switched on each side at random, as in randomised_attributes
    attributes: list[str] = field(default_factory=lambda: list(DEFAULT_ATTRIBUTES))
    probability: float = 0.5
    # "eubo" or "bald": outside the uniform share, draw the two sides' edit vectors by BoTorch's
    # EUBO or BALD on a PairwiseGP over the attribute design space (fitted by the worker);
    # "none": coin flips only
    design_acquisition: str = "eubo"

    def validate(self, where: str) -> None:
        if self.design_acquisition not in ("eubo", "bald", "none"):
            raise ConfigError(
                f"{where}.design_acquisition: must be 'eubo', 'bald' or 'none'; got {self.design_acquisition!r}."
            )
        if not 0.0 < self.uniform_share <= 1.0:
            raise ConfigError(
                f"{where}.uniform_share: must be in (0, 1] so every pair keeps a positive "
                f"probability; got {self.uniform_share}."
            )
        RandomisedAttributesConfig(attributes=self.attributes, probability=self.probability).validate(where)


@register_policy
class Active(Policy):
    name = "active"
    description = "Base pairs where the reward-model ensemble disagrees most, mixed with a uniform slice."
    config_class = ActiveConfig
    inputs = ("acquisition_scores", "design_scores")

    @classmethod
    def needs(cls, config: ActiveConfig) -> frozenset[str]:
        return frozenset(cls.inputs if config.design_acquisition != "none" else cls.inputs[:1])

    @classmethod
    def design_request(cls, config: ActiveConfig) -> tuple[list[str], str] | None:
        return None if config.design_acquisition == "none" else (list(config.attributes), config.design_acquisition)

    def __init__(self, config: ActiveConfig, pool: PoolSnapshot,
                 acquisition_scores: AcquisitionScores | None = None,
                 design_scores: DesignScores | None = None) -> None:
        super().__init__(config, pool)
        self.editors = [get_editor(a) for a in config.attributes]
        self.on_probability = {e.name: config.probability for e in self.editors}
        self._setup_design(config, design_scores)
        self.scores = acquisition_scores
        pairs, uniform, raw = [], [], []
        known = acquisition_scores.scores if acquisition_scores else {}
        for prompt in self.servable:
            ids = sorted(prompt.response_ids)
            k = len(ids)
            for i in range(k):
                for j in range(i + 1, k):
                    pairs.append((prompt.id, ids[i], ids[j]))
                    uniform.append(1.0 / len(self.servable) / (k * (k - 1) / 2))
                    raw.append(known.get((prompt.id, ids[i], ids[j]), np.nan))
        raw_arr = np.array(raw, dtype=float)
        fill = np.nanmean(raw_arr) if np.isfinite(raw_arr).any() else 1.0  # unscored pairs: average
        raw_arr = np.where(np.isfinite(raw_arr), raw_arr, fill).clip(min=0.0)
        uniform_arr = np.array(uniform)
        targeted = raw_arr / raw_arr.sum() if raw_arr.sum() > 0 else uniform_arr
        self.pairs = pairs
        self.raw = raw_arr
        self.floor = config.uniform_share * uniform_arr
        self.probability = self.floor + (1.0 - config.uniform_share) * targeted  # `(n_pairs,)`, sums to 1
        self._cdf = np.cumsum(self.probability)
        self._index = {p: i for i, p in enumerate(pairs)}

    def _setup_design(self, config: ActiveConfig, design_scores: DesignScores | None) -> None:
        """Sampling weights over unordered pairs of distinct design points, from EUBO or BALD
        (only scores computed with the configured acquisition are used)."""
        names = list(config.attributes)
        self.design_pairs: list[tuple[frozenset, frozenset]] = []
        self.design_weight: np.ndarray | None = None
        if (config.design_acquisition == "none" or design_scores is None or list(design_scores.attributes) != names
                or design_scores.acquisition != config.design_acquisition):
            return
        points = [frozenset(a for a, bit in zip(names, row) if bit) for row in design_points(names)]
        self.design_pairs = [(points[i], points[j]) for i, j in itertools.combinations(range(len(points)), 2)]
        scores = np.asarray(design_scores.scores, dtype=float)
        if len(scores) != len(self.design_pairs):
            self.design_pairs = []
            return
        w = scores - scores.min() + 1e-3
        self.design_weight = w / w.sum()
        self._design_cdf = np.cumsum(self.design_weight)
        self._design_index = {frozenset(p): k for k, p in enumerate(self.design_pairs)}

    def _edits_probability(self, left_on: frozenset, right_on: frozenset) -> float:
        """P(these on-sets on the left and right) under the edit mixture."""
        p_ind = coin_flip_probability((left_on, right_on), self.on_probability)
        if self.design_weight is None:
            return p_ind
        k = self._design_index.get(frozenset((left_on, right_on))) if left_on != right_on else None
        targeted = 0.5 * float(self.design_weight[k]) if k is not None else 0.0
        return self.config.uniform_share * p_ind + (1.0 - self.config.uniform_share) * targeted

    def _draw_edits(self, rng: np.random.Generator) -> tuple[frozenset, frozenset]:
        if self.design_weight is not None and rng.random() >= self.config.uniform_share:
            k = min(int(np.searchsorted(self._design_cdf, rng.random() * self._design_cdf[-1], side="right")),
                    len(self.design_pairs) - 1)
            a, b = self.design_pairs[k]
            return (a, b) if rng.integers(2) else (b, a)
        left, right = (frozenset(a for a, p in self.on_probability.items() if rng.random() < p) for _ in range(2))
        return left, right

    def propose(self, annotator: AnnotatorContext, rng: np.random.Generator) -> Proposal:
        i = min(int(np.searchsorted(self._cdf, rng.random() * self._cdf[-1], side="right")), len(self.pairs) - 1)
        prompt_id, a, b = self.pairs[i]
        swapped = bool(rng.integers(2))
        left, right = (b, a) if swapped else (a, b)
        on_sets = self._draw_edits(rng)
        p_arm = 0.5 * self._edits_probability(*on_sets)
        vectors = [
            {e.name: {"on": e.name in on, "editor": e.name, "seed": edit_seed(rid, e.name)} for e in self.editors}
            for rid, on in zip((left, right), on_sets)
        ]
        return Proposal(
            prompt_id=prompt_id, left=ProposedSide(left, vectors[0]), right=ProposedSide(right, vectors[1]),
            position_swapped=swapped, arm=arm_name(vectors[0], vectors[1]),
            propensity_score=float(self.probability[i]) * p_arm, arm_propensity=p_arm,
            acquisition_score=float(self.raw[i]) if self.scores else None,
            model_version=self.scores.version if self.scores else None,
        )

    def propensity_of(self, annotator: AnnotatorContext, prompt_id: int,
                      left: ProposedSide, right: ProposedSide) -> tuple[float, float]:
        a, b = sorted((left.base_response_id, right.base_response_id))
        i = self._index.get((prompt_id, a, b))
        names = {e.name for e in self.editors}
        if i is None or not (on_set(left.edit_vector) | on_set(right.edit_vector)) <= names:
            return 0.0, 0.0
        p_arm = 0.5 * self._edits_probability(on_set(left.edit_vector), on_set(right.edit_vector))
        return float(self.probability[i]) * p_arm, p_arm

    def candidate_table(self) -> dict[str, Any]:
        """Probabilities, floors and scores of every base pair (for tests and the researcher)."""
        return {"pairs": self.pairs, "probability": self.probability, "floor": self.floor, "score": self.raw}
