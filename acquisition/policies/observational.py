"""The observational policy: pool pairs as they come, kept as the comparison arm."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from acquisition.policies.policy import AnnotatorContext, Policy, Proposal, ProposedSide, register_policy


@dataclass
class ObservationalConfig:
    """Pairs from the pool as they are: the common practice, kept as the comparison arm."""

    def validate(self, where: str) -> None:
        return None


@register_policy
class Observational(Policy):
    name = "observational"
    family = "observational"
    description = "Pairs from the pool as they are (no edits); left/right at random."
    config_class = ObservationalConfig

    def propose(self, annotator: AnnotatorContext, rng: np.random.Generator) -> Proposal:
        prompt, left, right, swapped, p = self._uniform_base_pair(rng)
        return Proposal(
            prompt_id=prompt.id, left=ProposedSide(left, {}), right=ProposedSide(right, {}),
            position_swapped=swapped, arm="observational",
            propensity_score=p * 0.5, arm_propensity=0.5,
        )

    def propensity_of(self, annotator: AnnotatorContext, prompt_id: int,
                      left: ProposedSide, right: ProposedSide) -> tuple[float, float]:
        if left.edit_vector or right.edit_vector:  # it never serves an edit vector, not even one all off
            return 0.0, 0.0
        p = self._pair_probability(prompt_id, left.base_response_id, right.base_response_id)
        return (p * 0.5, 0.5) if p else (0.0, 0.0)
