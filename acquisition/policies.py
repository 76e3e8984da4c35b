"""Acquisition policies: which pair an annotator sees next, and with what probability.

A policy is a class with one method, ``propose(annotator, rng) -> Proposal``; what it needs
(the pool snapshot, its config) comes in through ``__init__``. Every proposal passes through
``validate_proposal`` once, in ``Policy.__init_subclass__``, so no policy can serve a pair
from two prompts, the same response twice, or a propensity outside (0, 1].

The propensity is the probability that the policy served exactly this proposal (prompt,
responses, edits, display position) to this annotator given the history; ``arm_propensity``
is the probability of the arm (edits and position) given the prompt and base pair, which is
what an inverse-propensity estimate of an attribute effect divides by.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from acquisition.config import from_dict, load_toml
from acquisition.editors import DEFAULT_ATTRIBUTES, EDITORS, edit_seed, get_editor
from collector.errors import ConfigError, DeconfoundError
from collector.store import PoolPrompt, PoolSnapshot

POLICIES: dict[str, type["Policy"]] = {}


def register_policy(cls: type["Policy"]) -> type["Policy"]:
    """Class decorator: make a policy available by its ``name`` to the app and the CLI."""
    POLICIES[cls.name] = cls
    return cls


@dataclass(frozen=True)
class ProposedSide:
    base_response_id: int
    edit_vector: dict[str, dict[str, Any]]  # attribute -> {"on", "editor", "seed"}


@dataclass(frozen=True)
class Proposal:
    prompt_id: int
    left: ProposedSide
    right: ProposedSide
    position_swapped: bool  # True when the policy's first response is shown on the right
    arm: str
    propensity_score: float
    arm_propensity: float
    acquisition_score: float | None = None
    model_version: str | None = None


class InvalidProposal(DeconfoundError):
    """A policy proposed a pair that breaks the contract (a bug in that policy)."""


def validate_proposal(proposal: Proposal, pool: PoolSnapshot) -> Proposal:
    """The one place the proposal contract is checked."""
    prompt = pool.prompt(proposal.prompt_id)
    for side in (proposal.left, proposal.right):
        if side.base_response_id not in prompt.response_ids:
            raise InvalidProposal(
                f"response {side.base_response_id} does not belong to prompt {proposal.prompt_id}"
            )
    if (proposal.left.base_response_id == proposal.right.base_response_id
            and _on(proposal.left.edit_vector) == _on(proposal.right.edit_vector)):
        raise InvalidProposal(f"both sides are the same response ({proposal.left.base_response_id})")
    for p in (proposal.propensity_score, proposal.arm_propensity):
        if not (0.0 < p <= 1.0) or math.isnan(p):
            raise InvalidProposal(f"propensity {p} is outside (0, 1]")
    return proposal


def _on(edit_vector: dict[str, dict[str, Any]]) -> frozenset[str]:
    return frozenset(a for a, e in edit_vector.items() if e.get("on"))


@dataclass(frozen=True)
class AnnotatorContext:
    id: int
    group: str = "default"


class Policy(ABC):
    """Contract: ``propose(annotator, rng) -> Proposal`` with an exact propensity."""

    name: ClassVar[str]
    description: ClassVar[str]
    config_class: ClassVar[type]

    def __init__(self, config: Any, pool: PoolSnapshot) -> None:
        self.config = config
        self.pool = pool
        self.servable = pool.servable
        if not self.servable:
            raise ConfigError(
                "The pool has no prompt with two responses: import or init a pool first "
                "(python -m collector init --demo)."
            )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "propose" in cls.__dict__:
            inner = cls.__dict__["propose"]

            @functools.wraps(inner)
            def checked(self: Policy, annotator: AnnotatorContext, rng: np.random.Generator) -> Proposal:
                return validate_proposal(inner(self, annotator, rng), self.pool)

            cls.propose = checked  # type: ignore[method-assign]

    @abstractmethod
    def propose(self, annotator: AnnotatorContext, rng: np.random.Generator) -> Proposal: ...

    def _uniform_base_pair(
        self, rng: np.random.Generator
    ) -> tuple[PoolPrompt, int, int, bool, float]:
        """A prompt uniformly at random, an unordered pair of its responses uniformly at random,
        and a fair coin for the display order.

        Returns:
            ``(prompt, left_id, right_id, swapped, p_prompt_pair)`` where ``p_prompt_pair`` is
            the probability of this prompt and unordered pair (the order adds a factor 1/2).
        """
        prompt = self.servable[int(rng.integers(len(self.servable)))]
        k = len(prompt.response_ids)
        i, j = sorted(int(x) for x in rng.choice(k, size=2, replace=False))
        first, second = prompt.response_ids[i], prompt.response_ids[j]
        swapped = bool(rng.integers(2))
        left, right = (second, first) if swapped else (first, second)
        p = 1.0 / len(self.servable) / (k * (k - 1) / 2)
        return prompt, left, right, swapped, p


@dataclass
class ObservationalConfig:
    """Pairs from the pool as they are: the common practice, kept as the comparison arm."""

    def validate(self, where: str) -> None:
        return None


@register_policy
class Observational(Policy):
    name = "observational"
    description = "Pairs from the pool as they are (no edits); left/right at random."
    config_class = ObservationalConfig

    def propose(self, annotator: AnnotatorContext, rng: np.random.Generator) -> Proposal:
        prompt, left, right, swapped, p = self._uniform_base_pair(rng)
        return Proposal(
            prompt_id=prompt.id, left=ProposedSide(left, {}), right=ProposedSide(right, {}),
            position_swapped=swapped, arm="observational",
            propensity_score=p * 0.5, arm_propensity=0.5,
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


def arm_name(left: dict[str, dict[str, Any]], right: dict[str, dict[str, Any]]) -> str:
    def side(v: dict[str, dict[str, Any]]) -> str:
        return "+".join(sorted(_on(v))) or "none"

    return f"L:{side(left)}|R:{side(right)}"


@register_policy
class RandomisedAttributes(Policy):
    name = "randomised_attributes"
    description = "Real pairs with each attribute switched on each side independently at random."
    config_class = RandomisedAttributesConfig

    def __init__(self, config: RandomisedAttributesConfig, pool: PoolSnapshot) -> None:
        super().__init__(config, pool)
        self.editors = [get_editor(a) for a in config.attributes]

    def propose(self, annotator: AnnotatorContext, rng: np.random.Generator) -> Proposal:
        prompt, left, right, swapped, p_pair = self._uniform_base_pair(rng)
        p_arm = 0.5
        vectors = []
        for response_id in (left, right):
            vector = {}
            for editor in self.editors:
                p = self.config.p(editor.name)
                on = bool(rng.random() < p)
                p_arm *= p if on else 1.0 - p
                vector[editor.name] = {
                    "on": on, "editor": editor.name, "seed": edit_seed(response_id, editor.name)
                }
            vectors.append(vector)
        return Proposal(
            prompt_id=prompt.id,
            left=ProposedSide(left, vectors[0]), right=ProposedSide(right, vectors[1]),
            position_swapped=swapped, arm=arm_name(vectors[0], vectors[1]),
            propensity_score=p_pair * p_arm, arm_propensity=p_arm,
        )


def parse_policy_config(name: str, config: dict[str, Any] | None, where: str = "policy") -> Any:
    """Validate a config table for the policy called ``name`` into its dataclass."""
    if name not in POLICIES:
        raise ConfigError(f"{where}.name: unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}.")
    return from_dict(POLICIES[name].config_class, config or {}, f"{where}.config")


def build_policy(name: str, config: dict[str, Any] | Any, pool: PoolSnapshot) -> Policy:
    """Instantiate a registered policy from a validated config (or a raw TOML table)."""
    if isinstance(config, dict):
        config = parse_policy_config(name, config)
    return POLICIES[name](config, pool)


def parse_policy_document(data: dict[str, Any], source: str = "policy") -> tuple[str, Any]:
    """A policy file's table (``name = "..."`` and an optional ``[config]``) -> ``(name, config)``."""
    allowed = {"name", "config", "description"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(allowed))}.")
    name = data.get("name")
    if not isinstance(name, str):
        raise ConfigError(
            f"{source}: missing key 'name' (a string); known policies: {', '.join(sorted(POLICIES))}."
        )
    return name, parse_policy_config(name, data.get("config"), source)


def load_policy_file(path: str) -> tuple[str, Any]:
    """Read and validate a TOML policy file."""
    return parse_policy_document(load_toml(path), str(path))


@dataclass
class CounterfactualPairsConfig:
    """Minimal pairs: a response against its own copy with exactly one attribute switched."""

    # attributes to contrast; one is drawn uniformly for each pair
    attributes: list[str] = field(default_factory=lambda: list(DEFAULT_ATTRIBUTES))

    def validate(self, where: str) -> None:
        RandomisedAttributesConfig(attributes=self.attributes).validate(where)


@register_policy
class CounterfactualPairs(Policy):
    name = "counterfactual_pairs"
    description = "A response against its copy with exactly one attribute changed; sides at random."
    config_class = CounterfactualPairsConfig

    def __init__(self, config: CounterfactualPairsConfig, pool: PoolSnapshot) -> None:
        super().__init__(config, pool)
        self.attributes = list(config.attributes)

    def propose(self, annotator: AnnotatorContext, rng: np.random.Generator) -> Proposal:
        prompt = self.servable[int(rng.integers(len(self.servable)))]
        base = prompt.response_ids[int(rng.integers(len(prompt.response_ids)))]
        attribute = self.attributes[int(rng.integers(len(self.attributes)))]
        on_left = bool(rng.integers(2))
        seed = edit_seed(base, attribute)
        left = {attribute: {"on": on_left, "editor": attribute, "seed": seed}}
        right = {attribute: {"on": not on_left, "editor": attribute, "seed": seed}}
        p_base = 1.0 / len(self.servable) / len(prompt.response_ids)
        arm_p = 0.5 / len(self.attributes)
        return Proposal(
            prompt_id=prompt.id, left=ProposedSide(base, left), right=ProposedSide(base, right),
            position_swapped=not on_left, arm=f"counterfactual:{attribute}",
            propensity_score=p_base * arm_p, arm_propensity=arm_p,
        )
