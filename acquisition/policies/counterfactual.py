"""counterfactual_pairs: a response against its own copy with exactly one attribute changed
(or a stored LLM rewrite against its rewrite-of-rewrite)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquisition.core.errors import ConfigError
from acquisition.core.pool import PoolSnapshot, texts_of
from acquisition.editors import DEFAULT_ATTRIBUTES, edit_seed, get_editor
from acquisition.policies.policy import AnnotatorContext, Policy, Proposal, ProposedSide, on_set, register_policy
from acquisition.policies.randomised import RandomisedAttributesConfig


@dataclass
class CounterfactualPairsConfig:
    """Minimal pairs: a response against its own copy with exactly one attribute switched."""

    # attributes to contrast; one is drawn uniformly for each pair among those that apply to
    # the drawn response (a list needs three sentences), the response among those with one
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
    family = "counterfactual"
    description = "A response against its copy with exactly one attribute changed; sides at random."
    config_class = CounterfactualPairsConfig

    inputs = ("rewrite_pairs",)

    @classmethod
    def needs(cls, config: CounterfactualPairsConfig) -> frozenset[str]:
        return frozenset(cls.inputs if config.source == "rewrites" else ())

    def __init__(self, config: CounterfactualPairsConfig, pool: PoolSnapshot, rewrite_pairs: Any = None) -> None:
        super().__init__(config, pool)
        self.attributes = list(config.attributes)
        if config.source == "rewrites":
            self._index_rewrites(rewrite_pairs or [])
        else:
            self._index_applicable()

    def _index_applicable(self) -> None:
        """Which configured attributes apply to each base response (``Editor.applies``, read once
        per pool snapshot, a chunk of texts at a time): a minimal pair is drawn only where its
        attribute can be switched, so no pair shows one text twice. Drawn prompt, base, attribute
        uniformly in turn among those with something to contrast."""
        editors = [get_editor(a) for a in self.attributes]
        self._applicable: dict[int, tuple[str, ...]] = {}
        self._bases: dict[int, tuple[int, ...]] = {}
        for prompt in self.servable:
            texts = texts_of(self.pool.response_text, list(prompt.response_ids))
            for rid in prompt.response_ids:
                fits = tuple(e.name for e in editors if e.fits(texts[rid], prompt.text))
                if fits:
                    self._applicable[rid] = fits
            bases = tuple(r for r in prompt.response_ids if r in self._applicable)
            if bases:
                self._bases[prompt.id] = bases
        self._prompts = sorted(self._bases)
        if not self._prompts:
            raise ConfigError(
                f"counterfactual_pairs: none of {', '.join(self.attributes)} applies to any response of the pool "
                f"(run `deconfound editors audit` to see where each applies)."
            )

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
            edit_marginals={pair.attribute: 0.5},  # one side has it, which one is a coin flip
        )

    def propose(self, annotator: AnnotatorContext, rng: np.random.Generator) -> Proposal:
        if self.config.source == "rewrites":
            return self._propose_rewrite(rng)
        prompt_id = self._prompts[int(rng.integers(len(self._prompts)))]
        bases = self._bases[prompt_id]
        base = bases[int(rng.integers(len(bases)))]
        fits = self._applicable[base]
        attribute = fits[int(rng.integers(len(fits)))]
        on_left = bool(rng.integers(2))
        seed = edit_seed(base, attribute)
        left = {attribute: {"on": on_left, "editor": attribute, "seed": seed}}
        right = {attribute: {"on": not on_left, "editor": attribute, "seed": seed}}
        score, arm_p = self._editor_propensity(prompt_id, base, attribute)
        return Proposal(
            prompt_id=prompt_id, left=ProposedSide(base, left), right=ProposedSide(base, right),
            position_swapped=not on_left, arm=f"counterfactual:{attribute}",
            propensity_score=score, arm_propensity=arm_p,
            edit_marginals={attribute: 0.5},  # on for one side, which one is a coin flip
        )

    def _editor_propensity(self, prompt_id: int, base: int, attribute: str) -> tuple[float, float]:
        """``(P(prompt, base, attribute, order), P(attribute, order | prompt, base))``; zeros
        where the attribute does not apply to the base."""
        fits = self._applicable.get(base, ())
        if prompt_id not in self._bases or base not in self._bases[prompt_id] or attribute not in fits:
            return 0.0, 0.0
        arm_p = 0.5 / len(fits)
        return arm_p / len(self._prompts) / len(self._bases[prompt_id]), arm_p

    def propensity_of(self, annotator: AnnotatorContext, prompt_id: int,
                      left: ProposedSide, right: ProposedSide) -> tuple[float, float]:
        if self.config.source == "rewrites":
            pair = self._pair_by_ids.get(frozenset((left.response_id, right.response_id)))
            if pair is None or pair.prompt_id != prompt_id:
                return 0.0, 0.0
            return self._rewrite_propensity(pair)
        if left.response_id is not None or right.response_id is not None:
            return 0.0, 0.0  # stored rewrites are not rule-based copies
        on = (on_set(left.edit_vector), on_set(right.edit_vector))
        if left.base_response_id != right.base_response_id:
            return 0.0, 0.0
        changed = on[0] ^ on[1]
        if len(changed) != 1 or (on[0] & on[1]) or not changed <= set(self.attributes):
            return 0.0, 0.0
        return self._editor_propensity(prompt_id, left.base_response_id, next(iter(changed)))
