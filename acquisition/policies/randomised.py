"""randomised_attributes: real pairs with each attribute switched on each side by a coin flip."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from acquisition.core.errors import ConfigError
from acquisition.core.pool import PoolSnapshot
from acquisition.editors import DEFAULT_ATTRIBUTES, EDITORS, edit_seed, get_editor
from acquisition.policies.policy import (
    AnnotatorContext,
    Policy,
    Proposal,
    ProposedSide,
    arm_name,
    coin_flip_probability,
    on_set,
    register_policy,
    same_draws,
)


@dataclass
class RandomisedAttributesConfig:
    """Each attribute switched on for each side independently."""

    # attributes to randomise; names from the editor registry
    attributes: list[str] = field(default_factory=lambda: list(DEFAULT_ATTRIBUTES))
    # probability that an attribute is on for one side
    probability: float = 0.5
    # per-attribute overrides of `probability`
    probabilities: dict[str, float] = field(default_factory=dict)

    def validate(self, where: str) -> None:
        if not self.attributes:
            raise ConfigError(f"{where}.attributes: name at least one attribute; known: {', '.join(sorted(EDITORS))}.")
        for i, a in enumerate(self.attributes):
            if a not in EDITORS:
                raise ConfigError(
                    f"{where}.attributes[{i}]: unknown attribute {a!r}; known: {', '.join(sorted(EDITORS))}."
                )
        if len(set(self.attributes)) != len(self.attributes):
            raise ConfigError(f"{where}.attributes: an attribute is listed twice.")
        for key, p in [("probability", self.probability)] + [
            (f"probabilities.{a}", v) for a, v in self.probabilities.items()
        ]:
            if not 0.0 < p < 1.0:
                raise ConfigError(
                    f"{where}.{key}: must be strictly between 0 and 1 (every arm needs a positive "
                    f"probability); got {p}."
                )
        for a in self.probabilities:
            if a not in self.attributes:
                raise ConfigError(
                    f"{where}.probabilities.{a}: not among the randomised attributes "
                    f"({', '.join(self.attributes)})."
                )

    def p(self, attribute: str) -> float:
        return self.probabilities.get(attribute, self.probability)


@register_policy
class RandomisedAttributes(Policy):
    name = "randomised_attributes"
    family = "randomised_attributes"
    description = "Real pairs with each attribute switched on each side independently at random."
    config_class = RandomisedAttributesConfig

    @classmethod
    def static_marginals(cls, config: RandomisedAttributesConfig) -> dict[str, float] | None:
        return {a: config.p(a) for a in config.attributes}

    def __init__(self, config: RandomisedAttributesConfig, pool: PoolSnapshot) -> None:
        super().__init__(config, pool)
        self.editors = [get_editor(a) for a in config.attributes]
        self.on_probability = {e.name: config.p(e.name) for e in self.editors}

    def propose(self, annotator: AnnotatorContext, rng: np.random.Generator) -> Proposal:
        prompt, left, right, swapped, p_pair = self._uniform_base_pair(rng)
        on_sets = tuple(
            frozenset(a for a, p in self.on_probability.items() if rng.random() < p) for _ in range(2)
        )
        p_arm = 0.5 * coin_flip_probability(on_sets, self.on_probability)
        vectors = [
            {e.name: {"on": e.name in on, "editor": e.name, "seed": edit_seed(rid, e.name)} for e in self.editors}
            for rid, on in zip((left, right), on_sets)
        ]
        return Proposal(
            prompt_id=prompt.id,
            left=ProposedSide(left, vectors[0]), right=ProposedSide(right, vectors[1]),
            position_swapped=swapped, arm=arm_name(vectors[0], vectors[1]),
            propensity_score=p_pair * p_arm, arm_propensity=p_arm, edit_marginals=dict(self.on_probability),
        )

    def propensity_of(self, annotator: AnnotatorContext, prompt_id: int,
                      left: ProposedSide, right: ProposedSide) -> tuple[float, float]:
        p_pair = self._pair_probability(prompt_id, left.base_response_id, right.base_response_id)
        names = {e.name for e in self.editors}
        if not p_pair or not same_draws(left, right, names):
            return 0.0, 0.0
        p_arm = 0.5 * coin_flip_probability((on_set(left.edit_vector), on_set(right.edit_vector)), self.on_probability)
        return p_pair * p_arm, p_arm
