"""Scoring the pool for the active policy, configured once (``ScoringConfig``, the training
config's ``acquisition``, ``diversity_weight`` and ``laplace_prior``): a weight for every base
pair (Laplace BALD with BAL-PM's prompt diversity, or the ensemble's disagreement) and, where
the active policy's declared ``design_request`` asks for them, the design-space scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from acquisition.core.errors import ConfigError
from acquisition.core.pool import PoolSnapshot
from acquisition.core.records import EditVector, PolicySpec
from acquisition.design import DesignScores, design_scores
from acquisition.policies import design_request
from models.reward import PairData, RewardModel


class LabelSource(Protocol):
    """What scoring reads from the database (a subset of ``models.training.LabelSource``)."""

    def pool_snapshot(self) -> PoolSnapshot: ...
    def active_policy(self) -> PolicySpec | None: ...
    def decisive_edit_vectors(self) -> list[dict[str, Any]]: ...

ACQUISITIONS = ("bald", "disagreement")


@dataclass(frozen=True)
class ScoringConfig:
    acquisition: str = "bald"  # "bald" (+ diversity_weight x BAL-PM prompt diversity) or "disagreement"
    diversity_weight: float = 0.0
    laplace_prior: float = 1.0

    def validate(self, where: str = "training") -> None:
        if self.acquisition not in ACQUISITIONS:
            raise ConfigError(f"{where}.acquisition: must be one of {', '.join(ACQUISITIONS)}; got {self.acquisition!r}.")
        if self.diversity_weight < 0 or self.laplace_prior <= 0:
            raise ConfigError(f"{where}: diversity_weight >= 0 and laplace_prior > 0 are required.")


def score_pool(model: RewardModel, train: PairData, rows: list[dict[str, Any]], store: LabelSource, embed,
               config: ScoringConfig) -> tuple[list[tuple[int, int, int]], np.ndarray, DesignScores | None]:
    """``(pairs, weights, design)``: every base pair's acquisition weight, and the design-space
    scores the active policy declares it samples by (``None`` where it declares none)."""
    if config.acquisition == "bald":
        pairs, scores = pair_bald_diversity(model, train, rows, store, embed, config.diversity_weight,
                                            config.laplace_prior)
    else:
        pairs, scores = pair_disagreement(model, store, embed)
    return pairs, scores, design_space_scores(store)


def _embedded_pool_pairs(store: LabelSource, embed):
    """Every unordered base pair of the pool as ``(prompt_id, low id, high id)``, the prompts'
    texts, and the embeddings of each pair's prompt and two responses."""
    pool = store.pool_snapshot()
    pairs = [(p.id, a, b) for p in pool.servable for i, a in enumerate(sorted(p.response_ids))
             for b in sorted(p.response_ids)[i + 1:]]
    prompt_text = {p.id: p.text for p in pool.prompts}
    if not pairs:
        return pairs, prompt_text, None, None, None
    P = embed([prompt_text[p] for p, _, _ in pairs])
    A = embed([pool.response_text[a] for _, a, _ in pairs])
    B = embed([pool.response_text[b] for _, _, b in pairs])
    return pairs, prompt_text, P, A, B


def pair_disagreement(model: RewardModel, store: LabelSource, embed) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """The ensemble's disagreement (std of P(first preferred) across members) for every
    unordered base pair of the pool: what the ``active`` policy samples by."""
    pairs, prompt_text, P, A, B = _embedded_pool_pairs(store, embed)
    if not pairs:
        return [], np.zeros(0)
    return pairs, model.preference(P, A, B)[1]


def pair_bald_diversity(model: RewardModel, train: PairData, rows: list[dict[str, Any]], store: LabelSource, embed,
                        diversity_weight: float = 1.0, prior: float = 1.0) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """BAL-PM-style scores for every unordered base pair of the pool: standardised BALD from a
    last-layer Laplace posterior of the trained head (``models.laplace``) plus
    ``diversity_weight`` times the standardised log distance from the pair's prompt to the
    nearest labelled prompt, turned into softrank weights (``acquisition.selection``) that
    sum to 1; the active policy mixes them with its uniform share."""
    from acquisition.selection import PromptDiversity, rank_weights, standardise
    from models.laplace import bald, fit_laplace, logit_moments

    pairs, prompt_text, P, A, B = _embedded_pool_pairs(store, embed)
    if not pairs:
        return [], np.zeros(0)
    score = standardise(bald(*logit_moments(fit_laplace(model, train, prior), P, A, B)))
    if diversity_weight > 0:
        prompt_ids = sorted({p for p, _, _ in pairs})
        where = {p: i for i, p in enumerate(prompt_ids)}
        diversity = PromptDiversity(embed([prompt_text[p] for p in prompt_ids]))
        diversity.add([where[r["prompt_id"]] for r in rows if r.get("prompt_id") in where])
        score = score + diversity_weight * standardise(diversity.scores()[[where[p] for p, _, _ in pairs]])
    return pairs, rank_weights(score)


def design_space_scores(store: LabelSource) -> DesignScores | None:
    """The design-space scores the active policy asks for (``Policy.design_request``: EUBO or
    BALD over its attributes) from a PairwiseGP on the labelled edit-vector comparisons; ``None``
    when it asks for none or there are no comparisons between different edit vectors yet."""
    spec = store.active_policy()
    request = design_request(spec.name, dict(spec.config)) if spec else None
    if request is None:
        return None
    attributes, acquisition = request
    comparisons = []
    for r in store.decisive_edit_vectors():
        # the design point each side showed: the treatment received (a failed or inapplicable edit is off)
        left = EditVector.parse(r["left_edit_vector"]).received_on(attributes)
        right = EditVector.parse(r["right_edit_vector"]).received_on(attributes)
        comparisons.append((left, right) if r["choice"] == "left" else (right, left))
    try:
        return DesignScores(attributes, design_scores(attributes, comparisons, acquisition), acquisition)
    except ValueError:
        return None
