"""Acquisition policies: which pair an annotator sees next, and with what probability.

A policy is a class with one method, ``propose(annotator, rng) -> Proposal``; what it needs
(the pool snapshot, its config) comes in through ``__init__``. Every proposal passes through
``validate_proposal`` once, in ``Policy.__init_subclass__``, so no policy can serve a pair
from two prompts, the same response twice, or a propensity outside (0, 1].

The propensity is the probability that the policy served exactly this proposal (prompt,
responses, edits, display position) to this annotator given the history; ``arm_propensity``
is the probability of the arm (edits and position) given the prompt and base pair, which is
what an inverse-propensity estimate of an attribute effect divides by."""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from acquisition.core.config import from_dict, load_toml
from acquisition.core.errors import ConfigError
from acquisition.core.pool import PoolPrompt, PoolSnapshot
from acquisition.core.records import EditVector, InvalidProposal, Proposal, ProposedSide, validate_draw

__all__ = ["EditVector", "InvalidProposal", "Proposal", "ProposedSide"]

POLICIES: dict[str, type["Policy"]] = {}

# What a policy can ask the serving side for, beyond its config and the pool; a policy names
# the ones it needs (``Policy.needs``) and receives exactly those as ``__init__`` arguments.
INPUTS = {
    "acquisition_scores": "the live model's disagreement per base pair (``AcquisitionScores``)",
    "design_scores": "the live model's scores over the attribute design space (``DesignScores``)",
    "rewrite_pairs": "stored LLM rewrite / rewrite-of-rewrite pairs (``list[RewritePair]``)",
    "served_count": "``annotator id -> pairs served to them so far``",
    "label_cells": "``last label id -> labels since, with their design cells``",
    "served_pairs": "``last served pair id -> regular served pairs since, (id, prompt, left base, right base)``",
}


def register_policy(cls: type["Policy"]) -> type["Policy"]:
    """Class decorator: make a policy available by its ``name`` to the app and the CLI."""
    POLICIES[cls.name] = cls
    return cls


def validate_proposal(proposal: Proposal, pool: PoolSnapshot) -> Proposal:
    """The one place the proposal contract is checked: a pool proposal's responses belong to
    its prompt, and ``validate_draw`` (family, probabilities, two different sides) holds."""
    prompt = pool.prompt(proposal.prompt_id)
    for side in (proposal.left, proposal.right):
        if side.base_response_id not in prompt.response_ids:
            raise InvalidProposal(
                f"response {side.base_response_id} does not belong to prompt {proposal.prompt_id}"
            )
    validate_draw(proposal)
    return proposal


def on_set(edit_vector: Mapping[str, Mapping[str, Any]]) -> frozenset[str]:
    return EditVector.parse(edit_vector).on_set()


def same_draws(left: ProposedSide, right: ProposedSide, names: set[str]) -> bool:
    """Whether both sides' edit vectors hold a draw for exactly ``names``: a policy that
    randomises those attributes records every one of them, switched on or off, so a pair whose
    vectors hold other keys (or none: an observational pair) cannot be its proposal. This keeps
    a mixture's propensity the probability of the record as served, edit vector included."""
    return set(left.edit_vector) == names and set(right.edit_vector) == names


@dataclass(frozen=True)
class AnnotatorContext:
    id: int
    group: str = "default"


class Policy(ABC):
    """Contract: ``propose(annotator, rng) -> Proposal`` with an exact propensity.

    ``inputs`` names what ``__init__`` takes from ``INPUTS`` (checked once, at class creation);
    ``needs(config)`` narrows it for one config, and ``design_request(config)`` tells the
    trainer which design-space scores to compute for it."""

    name: ClassVar[str]
    description: ClassVar[str]
    family: ClassVar[str]  # what its pairs are filed under (``acquisition.core.records.FAMILIES``)
    config_class: ClassVar[type]
    inputs: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def needs(cls, config: Any) -> frozenset[str]:
        """The inputs this policy needs with ``config`` (default: every one it takes)."""
        return frozenset(cls.inputs)

    @classmethod
    def static_marginals(cls, config: Any) -> dict[str, float] | None:
        """Each randomised attribute's P(on for a side) where it follows from the config alone
        (no history, no model): what a pair served before ``edit_marginals`` was recorded had."""
        return None

    @classmethod
    def design_request(cls, config: Any) -> tuple[list[str], str] | None:
        """``(attributes, acquisition)`` when the policy samples edits by design-space scores."""
        return None

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
        unknown = set(cls.inputs) - set(INPUTS)
        params = inspect.signature(cls.__init__).parameters
        takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        if unknown or not (takes_all or set(cls.inputs) <= set(params)):
            raise TypeError(f"{cls.__name__}.inputs {sorted(cls.inputs)}: each must be in INPUTS "
                            f"({', '.join(INPUTS)}) and an argument of __init__")
        if "propose" in cls.__dict__:
            inner = cls.__dict__["propose"]

            @functools.wraps(inner)
            def checked(self: Policy, annotator: AnnotatorContext, rng: np.random.Generator) -> Proposal:
                proposal = inner(self, annotator, rng)
                if not proposal.family:
                    proposal = replace(proposal, family=self.family)
                return validate_proposal(proposal, self.pool)

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
        prompt = self.servable.get(prompt_id)
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
        return "+".join(sorted(on_set(v))) or "none"

    return f"L:{side(left)}|R:{side(right)}"


def parse_policy_config(name: str, config: dict[str, Any] | None, where: str = "policy") -> Any:
    """Validate a config table for the policy called ``name`` into its dataclass."""
    if name not in POLICIES:
        raise ConfigError(f"{where}.name: unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}.")
    return from_dict(POLICIES[name].config_class, config or {}, f"{where}.config")


def build_policy(name: str, config: dict[str, Any] | Any, pool: PoolSnapshot, **inputs: Any) -> Policy:
    """Instantiate a registered policy from a validated config (or a raw TOML table), giving it
    the ``inputs`` (see ``INPUTS``) it needs; a policy that takes ``**inputs`` (``mixture``)
    receives them all."""
    if isinstance(config, dict):
        config = parse_policy_config(name, config)
    cls = POLICIES[name]
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return cls(config, pool, **inputs)
    needed = cls.needs(config)
    return cls(config, pool, **{k: v for k, v in inputs.items() if k in needed and v is not None})


def policy_needs(name: str, config: dict[str, Any] | Any) -> frozenset[str]:
    """The inputs the registered policy ``name`` needs with ``config``."""
    if isinstance(config, dict):
        config = parse_policy_config(name, config)
    return POLICIES[name].needs(config)


def design_request(name: str, config: dict[str, Any] | Any) -> tuple[list[str], str] | None:
    """``(attributes, acquisition)`` of the design-space scores the policy ``name`` samples by."""
    if isinstance(config, dict):
        config = parse_policy_config(name, config)
    return POLICIES[name].design_request(config)


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
    config = parse_policy_config(name, data.get("config"), source)
    _refuse_unoffered(data.get("config") or {}, f"{source}.config")
    return name, config


def _refuse_unoffered(table: dict[str, Any], where: str) -> None:
    """A study's policy file may randomise only the attributes the product offers: no rule-based
    edit that is not the attribute it names (``Editor.randomisable``; verbosity's filler). LLM
    rewrites (``source = "rewrites"``) of the same attribute are fine. Simulations that define
    such an attribute on purpose (the causal benchmark's synthetic worlds) build their configs
    in code and do not pass through here."""
    from acquisition.editors import EDITORS

    if table.get("source") != "rewrites":
        for i, attribute in enumerate(table.get("attributes") or []):
            editor = EDITORS.get(attribute) if isinstance(attribute, str) else None
            if editor is not None and not editor.randomisable:
                raise ConfigError(
                    f"{where}.attributes[{i}]: {attribute!r} is not offered as a rule-based treatment (its edit "
                    f"is not the attribute it names); randomise it with LLM rewrites: counterfactual_pairs with "
                    f"source = \"rewrites\" (`deconfound rewrite --attributes {attribute}`)."
                )
    for i, component in enumerate(table.get("components") or []):
        if isinstance(component, dict):
            _refuse_unoffered(component.get("config") or {}, f"{where}.components[{i}].config")


def load_policy_file(path: str) -> tuple[str, Any]:
    """Read and validate a TOML policy file."""
    return parse_policy_document(load_toml(path), str(path))
