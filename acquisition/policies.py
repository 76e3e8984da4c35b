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
import inspect
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
    response_id: int | None = None  # a stored variant of the base (an LLM rewrite), served as it is


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
        self._servable_by_id = {p.id: p for p in self.servable}
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

    def prepare(self) -> None:
        """Bring history-dependent state up to date; the serving layer calls it before each
        ``propose``, and ``propose``/``propensity_of`` never change that state themselves, so
        the propensity recorded with a pair is the probability it was drawn with."""

    def propensity_of(self, annotator: AnnotatorContext, prompt_id: int,
                      left: ProposedSide, right: ProposedSide) -> tuple[float, float]:
        """``(propensity_score, arm_propensity)`` of serving this displayed pair, judged by
        which attributes are on each side; ``(0, 0)`` where the policy cannot serve it. A
        mixture needs it to add up the probability over its components."""
        raise NotImplementedError(f"{self.name} cannot compute the propensity of an arbitrary pair")

    def _pair_probability(self, prompt_id: int, a: int, b: int) -> float:
        """P(prompt, unordered base pair) under ``_uniform_base_pair``; 0 if impossible."""
        prompt = self._servable_by_id.get(prompt_id)
        if prompt is None or a == b or a not in prompt.response_ids or b not in prompt.response_ids:
            return 0.0
        k = len(prompt.response_ids)
        return 1.0 / len(self.servable) / (k * (k - 1) / 2)

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

    def propensity_of(self, annotator: AnnotatorContext, prompt_id: int,
                      left: ProposedSide, right: ProposedSide) -> tuple[float, float]:
        if _on(left.edit_vector) or _on(right.edit_vector):
            return 0.0, 0.0
        p = self._pair_probability(prompt_id, left.base_response_id, right.base_response_id)
        return (p * 0.5, 0.5) if p else (0.0, 0.0)


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


def coin_flip_probability(on_sets: tuple[frozenset[str], ...], probability: dict[str, float]) -> float:
    """P(each side shows exactly its on-set) when every attribute in ``probability`` is switched
    on for each side independently with its own probability."""
    result = 1.0
    for on in on_sets:
        for attribute, p in probability.items():
            result *= p if attribute in on else 1.0 - p
    return result


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
            propensity_score=p_pair * p_arm, arm_propensity=p_arm,
        )

    def propensity_of(self, annotator: AnnotatorContext, prompt_id: int,
                      left: ProposedSide, right: ProposedSide) -> tuple[float, float]:
        p_pair = self._pair_probability(prompt_id, left.base_response_id, right.base_response_id)
        names = {e.name for e in self.editors}
        if not p_pair or not (_on(left.edit_vector) | _on(right.edit_vector)) <= names:
            return 0.0, 0.0
        p_arm = 0.5 * coin_flip_probability((_on(left.edit_vector), _on(right.edit_vector)), self.on_probability)
        return p_pair * p_arm, p_arm


def parse_policy_config(name: str, config: dict[str, Any] | None, where: str = "policy") -> Any:
    """Validate a config table for the policy called ``name`` into its dataclass."""
    if name not in POLICIES:
        raise ConfigError(f"{where}.name: unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}.")
    return from_dict(POLICIES[name].config_class, config or {}, f"{where}.config")


def build_policy(name: str, config: dict[str, Any] | Any, pool: PoolSnapshot, **deps: Any) -> Policy:
    """Instantiate a registered policy from a validated config (or a raw TOML table).

    ``deps`` are what the serving layer can offer (``acquisition_scores``: the live model's
    disagreement per base pair; ``design_scores``; ``served_count``; ``label_cells``: the
    labelled profiles so far); each policy receives the ones its ``__init__`` names, and a
    policy that takes ``**deps`` (``mixture``) receives them all."""
    if isinstance(config, dict):
        config = parse_policy_config(name, config)
    cls = POLICIES[name]
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return cls(config, pool, **deps)
    return cls(config, pool, **{k: v for k, v in deps.items() if k in params and v is not None})


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
    # "editors": rule-based copies made at serve time; "rewrites": stored LLM rewrite vs
    # rewrite-of-rewrite pairs (`python -m collector rewrite`, acquisition/rewriter.py)
    source: str = "editors"

    def validate(self, where: str) -> None:
        if self.source not in ("editors", "rewrites"):
            raise ConfigError(f"{where}.source: must be \"editors\" or \"rewrites\"; got {self.source!r}.")
        if self.source == "editors":
            RandomisedAttributesConfig(attributes=self.attributes).validate(where)
        elif not self.attributes or len(set(self.attributes)) != len(self.attributes):
            raise ConfigError(f"{where}.attributes: name each rewritten attribute once.")


@register_policy
class CounterfactualPairs(Policy):
    name = "counterfactual_pairs"
    description = "A response against its copy with exactly one attribute changed; sides at random."
    config_class = CounterfactualPairsConfig

    def __init__(self, config: CounterfactualPairsConfig, pool: PoolSnapshot, rewrite_pairs: Any = None) -> None:
        super().__init__(config, pool)
        self.attributes = list(config.attributes)
        if config.source == "rewrites":
            self._index_rewrites(rewrite_pairs or [])

    def _index_rewrites(self, rewrite_pairs: Any) -> None:
        """Stored rewrite pairs (``acquisition.rewriter.RewritePair``) of the configured
        attributes, by prompt and base response; drawn prompt, base, pair uniformly in turn."""
        self._pairs_by_base: dict[int, list[Any]] = {}
        for pair in sorted(rewrite_pairs, key=lambda p: (p.base_response_id, p.attribute, p.first_response_id)):
            if pair.attribute in self.attributes and pair.base_response_id in self.pool.response_text:
                self._pairs_by_base.setdefault(pair.base_response_id, []).append(pair)
        self._bases_by_prompt: dict[int, list[int]] = {}
        for base, pairs in self._pairs_by_base.items():
            self._bases_by_prompt.setdefault(pairs[0].prompt_id, []).append(base)
        self._rewrite_prompts = sorted(self._bases_by_prompt)
        self._pair_by_ids = {frozenset((p.first_response_id, p.second_response_id)): p
                             for pairs in self._pairs_by_base.values() for p in pairs}
        if not self._rewrite_prompts:
            raise ConfigError(
                f"counterfactual_pairs with source = \"rewrites\": no stored rewrite pairs for "
                f"{', '.join(self.attributes)}; generate them first with `python -m collector rewrite "
                f"--model PATH --attributes {','.join(self.attributes)}`."
            )

    def _rewrite_propensity(self, pair: Any) -> tuple[float, float]:
        arm_p = 0.5 / len(self._pairs_by_base[pair.base_response_id])
        bases = self._bases_by_prompt[pair.prompt_id]
        return arm_p / len(self._rewrite_prompts) / len(bases), arm_p

    def _propose_rewrite(self, rng: np.random.Generator) -> Proposal:
        prompt_id = self._rewrite_prompts[int(rng.integers(len(self._rewrite_prompts)))]
        bases = self._bases_by_prompt[prompt_id]
        pairs = self._pairs_by_base[bases[int(rng.integers(len(bases)))]]
        pair = pairs[int(rng.integers(len(pairs)))]
        first = ProposedSide(pair.base_response_id, pair.first_edit_vector, pair.first_response_id)
        second = ProposedSide(pair.base_response_id, pair.second_edit_vector, pair.second_response_id)
        swapped = bool(rng.integers(2))  # the rewrite (r1) shown on the right
        score, arm_p = self._rewrite_propensity(pair)
        return Proposal(
            prompt_id=prompt_id, left=second if swapped else first, right=first if swapped else second,
            position_swapped=swapped, arm=f"rewrite:{pair.attribute}", propensity_score=score, arm_propensity=arm_p,
        )

    def propose(self, annotator: AnnotatorContext, rng: np.random.Generator) -> Proposal:
        if self.config.source == "rewrites":
            return self._propose_rewrite(rng)
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

    def propensity_of(self, annotator: AnnotatorContext, prompt_id: int,
                      left: ProposedSide, right: ProposedSide) -> tuple[float, float]:
        if self.config.source == "rewrites":
            pair = self._pair_by_ids.get(frozenset((left.response_id, right.response_id)))
            if pair is None or pair.prompt_id != prompt_id:
                return 0.0, 0.0
            return self._rewrite_propensity(pair)
        if left.response_id is not None or right.response_id is not None:
            return 0.0, 0.0  # stored rewrites are not rule-based copies
        prompt = self._servable_by_id.get(prompt_id)
        on = (_on(left.edit_vector), _on(right.edit_vector))
        if (prompt is None or left.base_response_id != right.base_response_id
                or left.base_response_id not in prompt.response_ids):
            return 0.0, 0.0
        changed = on[0] ^ on[1]
        if len(changed) != 1 or (on[0] & on[1]) or not changed <= set(self.attributes):
            return 0.0, 0.0
        arm_p = 0.5 / len(self.attributes)
        return arm_p / len(self.servable) / len(prompt.response_ids), arm_p


@dataclass
class MixtureComponent:
    name: str  # a registered policy other than mixture
    weight: float  # share of pairs from this component (weights are normalised)
    config: dict[str, Any] = field(default_factory=dict)  # that policy's own [config]


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
            if c.weight <= 0:
                raise ConfigError(f"{where}.components[{i}].weight: must be positive; got {c.weight}.")
            parse_policy_config(c.name, c.config, f"{where}.components[{i}]")


@register_policy
class Mixture(Policy):
    name = "mixture"
    description = "Weights over other policies (e.g. 80% randomised, 20% observational control)."
    config_class = MixtureConfig

    def __init__(self, config: MixtureConfig, pool: PoolSnapshot, **deps: Any) -> None:
        super().__init__(config, pool)
        self.components = [build_policy(c.name, c.config, pool, **deps) for c in config.components]
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
        )

    def propensity_of(self, annotator: AnnotatorContext, prompt_id: int,
                      left: ProposedSide, right: ProposedSide) -> tuple[float, float]:
        score = arm = 0.0
        for w, component in zip(self.weights, self.components):
            s, a = component.propensity_of(annotator, prompt_id, left, right)
            score, arm = score + w * s, arm + w * a
        return score, arm


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
    description = "Prompts assigned uniformly at random, with a share in pool order as the observational arm."
    config_class = AssignmentRandomisationConfig

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
                        position_swapped=swapped, arm=arm, propensity_score=score, arm_propensity=arm_p)

    def propensity_of(self, annotator: AnnotatorContext, prompt_id: int,
                      left: ProposedSide, right: ProposedSide) -> tuple[float, float]:
        if _on(left.edit_vector) or _on(right.edit_vector):
            return 0.0, 0.0
        p_pair_given_prompt = self._pair_probability(prompt_id, left.base_response_id, right.base_response_id)
        if not p_pair_given_prompt:
            return 0.0, 0.0
        p_pair_given_prompt *= len(self.servable)  # undo the uniform prompt factor
        s = self.config.observational_share
        p_prompt = (1 - s) / len(self.servable) + (s if self._pool_order_prompt(annotator).id == prompt_id else 0.0)
        return p_prompt * p_pair_given_prompt * 0.5, 0.5
