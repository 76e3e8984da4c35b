"""mixture: weights over other policies; the propensity is summed over every component."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquisition.core.errors import ConfigError
from acquisition.core.pool import PoolSnapshot
from acquisition.policies.policy import (
    POLICIES,
    AnnotatorContext,
    Policy,
    Proposal,
    ProposedSide,
    build_policy,
    design_request,
    parse_policy_config,
    policy_needs,
    register_policy,
)


@dataclass
class MixtureComponent:
    name: str  # a registered policy other than mixture
    weight: float  # share of pairs from this component (weights are normalised)
    config: dict[str, Any] = field(default_factory=dict)  # that policy's own [config]
    # that config parsed into the policy's dataclass, once, by ``MixtureConfig.validate``
    parsed: Any = field(default=None, init=False, repr=False, compare=False, metadata={"derived": True})

    @property
    def spec(self) -> Any:
        """The parsed config (the table where the component was built in code, not validated)."""
        return self.parsed if self.parsed is not None else self.config


@dataclass
class MixtureConfig:
    """Weights over other policies; the propensity is the mixture's, summed over components."""

    components: list[MixtureComponent] = field(default_factory=list)

    def validate(self, where: str) -> None:
        if len(self.components) < 1:
            raise ConfigError(f"{where}.components: give at least one [[config.components]] table.")
        for i, c in enumerate(self.components):
            if c.name == "mixture" or c.name not in POLICIES:
                known = ", ".join(sorted(n for n in POLICIES if n != "mixture"))
                raise ConfigError(f"{where}.components[{i}].name: {c.name!r} is not allowed; known: {known}.")
            if not math.isfinite(c.weight) or c.weight <= 0:
                raise ConfigError(f"{where}.components[{i}].weight: must be a positive finite number; got {c.weight}.")
            c.parsed = parse_policy_config(c.name, c.config, f"{where}.components[{i}]")


@register_policy
class Mixture(Policy):
    name = "mixture"
    family = ""  # each pair is filed under the component that served it
    description = "Weights over other policies (e.g. 80% randomised, 20% observational control)."
    config_class = MixtureConfig

    @classmethod
    def needs(cls, config: MixtureConfig) -> frozenset[str]:
        return frozenset().union(*(policy_needs(c.name, c.spec) for c in config.components))

    @classmethod
    def design_request(cls, config: MixtureConfig) -> tuple[list[str], str] | None:
        requests = [design_request(c.name, c.spec) for c in config.components]
        return next((r for r in requests if r is not None), None)

    def __init__(self, config: MixtureConfig, pool: PoolSnapshot, **inputs: Any) -> None:
        super().__init__(config, pool)
        self.components = [build_policy(c.name, c.spec, pool, **inputs) for c in config.components]
        weights = np.array([c.weight for c in config.components], dtype=float)
        self.weights = weights / weights.sum()

    def prepare(self) -> None:
        for component in self.components:
            component.prepare()

    def propose(self, annotator: AnnotatorContext, rng: np.random.Generator) -> Proposal:
        k = int(rng.choice(len(self.components), p=self.weights))
        chosen = self.components[k].propose(annotator, rng)
        score, arm = self.propensity_of(annotator, chosen.prompt_id, chosen.left, chosen.right)
        return Proposal(
            prompt_id=chosen.prompt_id, left=chosen.left, right=chosen.right,
            position_swapped=chosen.position_swapped, arm=f"{self.components[k].name}:{chosen.arm}",
            propensity_score=score, arm_propensity=arm,
            acquisition_score=chosen.acquisition_score, model_version=chosen.model_version,
            # given the component, which is drawn first by fixed weights: an exogenous
            # covariate, so dividing by the component's marginal is still the design's weight
            edit_marginals=chosen.edit_marginals, family=chosen.family,
        )

    def propensity_of(self, annotator: AnnotatorContext, prompt_id: int,
                      left: ProposedSide, right: ProposedSide) -> tuple[float, float]:
        score = arm = 0.0
        for w, component in zip(self.weights, self.components):
            s, a = component.propensity_of(annotator, prompt_id, left, right)
            score, arm = score + w * s, arm + w * a
        return score, arm
