"""assignment_randomisation: prompts assigned at random across annotators, with a pool-order
observational share kept as the comparison arm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from acquisition.core.errors import ConfigError
from acquisition.core.pool import PoolPrompt, PoolSnapshot
from acquisition.policies.policy import AnnotatorContext, Policy, Proposal, ProposedSide, register_policy


@dataclass
class AssignmentRandomisationConfig:
    """Prompts assigned at random across annotators and groups (breaking the link between who
    judges and what they judge), with a share kept in pool order as the observational arm."""

    # share of pairs whose prompt follows pool order for that annotator (the comparison arm)
    observational_share: float = 0.2

    def validate(self, where: str) -> None:
        if not 0.0 <= self.observational_share < 1.0:
            raise ConfigError(
                f"{where}.observational_share: must be in [0, 1) so every prompt keeps a positive "
                f"probability; got {self.observational_share}."
            )


@register_policy
class AssignmentRandomisation(Policy):
    name = "assignment_randomisation"
    family = "randomised_assignment"
    description = "Prompts assigned uniformly at random, with a share in pool order as the observational arm."
    config_class = AssignmentRandomisationConfig

    inputs = ("served_count",)

    def __init__(self, config: AssignmentRandomisationConfig, pool: PoolSnapshot,
                 served_count: Any = None) -> None:
        super().__init__(config, pool)
        # how many pairs this annotator was served before (pool order continues from there)
        self.served_count = served_count or (lambda annotator_id: 0)

    def _pool_order_prompt(self, annotator: AnnotatorContext) -> PoolPrompt:
        return self.servable[int(self.served_count(annotator.id)) % len(self.servable)]

    def propose(self, annotator: AnnotatorContext, rng: np.random.Generator) -> Proposal:
        s = self.config.observational_share
        if rng.random() < s:
            prompt, arm = self._pool_order_prompt(annotator), "pool_order"
        else:
            prompt, arm = self.servable[int(rng.integers(len(self.servable)))], "randomised_assignment"
        k = len(prompt.response_ids)
        i, j = sorted(int(x) for x in rng.choice(k, size=2, replace=False))
        swapped = bool(rng.integers(2))
        first, second = prompt.response_ids[i], prompt.response_ids[j]
        left, right = (second, first) if swapped else (first, second)
        score, arm_p = self.propensity_of(annotator, prompt.id, ProposedSide(left, {}), ProposedSide(right, {}))
        return Proposal(prompt_id=prompt.id, left=ProposedSide(left, {}), right=ProposedSide(right, {}),
                        position_swapped=swapped, arm=arm, propensity_score=score, arm_propensity=arm_p,
                        family="observational" if arm == "pool_order" else "randomised_assignment")

    def propensity_of(self, annotator: AnnotatorContext, prompt_id: int,
                      left: ProposedSide, right: ProposedSide) -> tuple[float, float]:
        if left.edit_vector or right.edit_vector:  # it never serves an edit vector, not even one all off
            return 0.0, 0.0
        p_pair_given_prompt = self._pair_probability(prompt_id, left.base_response_id, right.base_response_id)
        if not p_pair_given_prompt:
            return 0.0, 0.0
        p_pair_given_prompt *= len(self.servable)  # undo the uniform prompt factor
        s = self.config.observational_share
        p_prompt = (1 - s) / len(self.servable) + (s if self._pool_order_prompt(annotator).id == prompt_id else 0.0)
        return p_prompt * p_pair_given_prompt * 0.5, 0.5
