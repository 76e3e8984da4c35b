"""Overlap targeting: serve more of the design cells that are rare so far.

Observational data lacks overlap: some attribute combinations never meet some prompt types
or annotator groups, so no estimator can say what happens there. This policy counts the
labelled profiles (one per side of each labelled pair) in every cell
``(prompt type, annotator group, attribute combination)`` and samples

    P(type | group)        = (1 - e) * w(type, group) / sum_w + e / n_types
    P(combination | type)  = (1 - e) * v(combination, type, group) / sum_v + e / 2**A

independently for each side, with ``w = (n + 1) ** -strength`` over the cell's label count
``n`` (``e`` is ``uniform_share``). Prompt, base pair and display order are then uniform. Every
cell keeps at least ``e`` times its uniform probability, and the probability is exact: counts
are refreshed only by ``prepare()``, which the serving layer calls before each proposal, so
``propose`` and ``propensity_of`` see the same counts.

A profile's combination is read from its edit vector for the targeted attributes the edit
vector carries and measured on the base text otherwise (attributes with no reading on a
single text, such as verbosity, count as off there).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquisition.core.errors import ConfigError
from acquisition.core.pool import PoolSnapshot, PromptSequence
from acquisition.editors import DEFAULT_ATTRIBUTES, edit_seed, get_editor
from acquisition.policies.policy import (
    AnnotatorContext,
    Policy,
    Proposal,
    ProposedSide,
    arm_name,
    on_set,
    register_policy,
    same_draws,
)
from acquisition.policies.randomised import RandomisedAttributesConfig

MAX_ATTRIBUTES = 10  # 2**10 combinations per cell is still cheap to weigh per request


@dataclass
class OverlapTargetingConfig:
    """Over-sample rare (prompt type x group x attribute combination) cells."""

    # attributes whose combinations are targeted
    attributes: list[str] = field(default_factory=lambda: list(DEFAULT_ATTRIBUTES[:4]))
    # how hard to push towards rare cells: weight = (count + 1) ** -strength; 0 is uniform
    strength: float = 1.0
    # share of uniform sampling mixed in; every cell keeps at least this times its uniform probability
    uniform_share: float = 0.2
    # also target prompt types within each annotator group (false: prompts uniform)
    target_prompt_types: bool = True

    def validate(self, where: str) -> None:
        RandomisedAttributesConfig(attributes=self.attributes).validate(where)
        if len(self.attributes) > MAX_ATTRIBUTES:
            raise ConfigError(f"{where}.attributes: at most {MAX_ATTRIBUTES} attributes; got {len(self.attributes)}.")
        if not 0.0 <= self.strength <= 10.0:
            raise ConfigError(f"{where}.strength: must be between 0 and 10; got {self.strength}.")
        if not 0.0 < self.uniform_share <= 1.0:
            raise ConfigError(
                f"{where}.uniform_share: must be in (0, 1] so every cell keeps a positive "
                f"probability; got {self.uniform_share}."
            )


@register_policy
class OverlapTargeting(Policy):
    name = "overlap_targeting"
    family = "overlap_targeting"
    description = "Over-samples the attribute combinations and prompt types each group has labelled least."
    config_class = OverlapTargetingConfig

    inputs = ("label_cells",)

    def __init__(self, config: OverlapTargetingConfig, pool: PoolSnapshot,
                 label_cells: Callable[[int], list[dict[str, Any]]] | None = None) -> None:
        super().__init__(config, pool)
        self.attributes = list(config.attributes)
        self.editors = [get_editor(a) for a in self.attributes]
        self.combos = [frozenset(c) for r in range(len(self.attributes) + 1)
                       for c in itertools.combinations(self.attributes, r)]
        self.by_type: dict[str, PromptSequence] = pool.by_task_type()
        self.types = sorted(self.by_type)
        self._label_cells = label_cells
        self._last_label_id = 0
        self.type_counts: Counter[tuple[str, str]] = Counter()          # (group, type)
        self.combo_counts: Counter[tuple[str, str, frozenset]] = Counter()  # (group, type, combo)
        self._measured: dict[int, frozenset[str]] = {}
        self.prepare()

    # ------------------------------------------------------------------ counts
    def prepare(self) -> None:
        """Read the labels given since the last call into the cell counts."""
        if self._label_cells is None:
            return
        for row in self._label_cells(self._last_label_id):
            group, ptype = row["annotator_group"], row["task_type"]
            self.type_counts[(group, ptype)] += 1
            for side in ("left", "right"):
                combo = self._combo(row[f"{side}_base_response_id"], row[f"{side}_edit_vector"])
                self.combo_counts[(group, ptype, combo)] += 1
            self._last_label_id = row["label_id"]

    def _combo(self, base_id: int, edit_vector: Mapping[str, Any]) -> frozenset[str]:
        on = set()
        measured = None
        for editor in self.editors:
            if editor.name in edit_vector:
                if edit_vector[editor.name].get("on"):
                    on.add(editor.name)
            else:
                if measured is None:
                    measured = self._measure(base_id)
                if editor.name in measured:
                    on.add(editor.name)
        return frozenset(on)

    def _measure(self, base_id: int) -> frozenset[str]:
        if base_id not in self._measured:
            text = self.pool.response_text.get(base_id, "")
            self._measured[base_id] = frozenset(
                e.name for e in self.editors if e.state(None, text) == 1.0
            )
        return self._measured[base_id]

    # ------------------------------------------------------------------ probabilities
    def _mix(self, counts: np.ndarray) -> np.ndarray:
        e, s = self.config.uniform_share, self.config.strength
        w = (counts + 1.0) ** -s
        return (1 - e) * w / w.sum() + e / len(counts)

    def type_probabilities(self, group: str) -> np.ndarray:
        if not self.config.target_prompt_types:
            sizes = np.array([len(self.by_type[t]) for t in self.types], dtype=float)
            return sizes / sizes.sum()
        return self._mix(np.array([self.type_counts[(group, t)] for t in self.types], dtype=float))

    def combo_probabilities(self, group: str, ptype: str) -> np.ndarray:
        return self._mix(np.array([self.combo_counts[(group, ptype, c)] for c in self.combos], dtype=float))

    def _vector(self, response_id: int, on: frozenset[str]) -> dict[str, dict[str, Any]]:
        return {a: {"on": a in on, "editor": a, "seed": edit_seed(response_id, a)} for a in self.attributes}

    # ------------------------------------------------------------------ contract
    def propose(self, annotator: AnnotatorContext, rng: np.random.Generator) -> Proposal:
        p_types = self.type_probabilities(annotator.group)
        t = int(rng.choice(len(self.types), p=p_types))
        prompts = self.by_type[self.types[t]]
        prompt = prompts[int(rng.integers(len(prompts)))]
        k = len(prompt.response_ids)
        i, j = sorted(int(x) for x in rng.choice(k, size=2, replace=False))
        swapped = bool(rng.integers(2))
        first, second = prompt.response_ids[i], prompt.response_ids[j]
        left, right = (second, first) if swapped else (first, second)
        p_combo = self.combo_probabilities(annotator.group, prompt.task_type)
        c_left, c_right = (int(rng.choice(len(self.combos), p=p_combo)) for _ in range(2))
        lv, rv = self._vector(left, self.combos[c_left]), self._vector(right, self.combos[c_right])
        arm_p = 0.5 * p_combo[c_left] * p_combo[c_right]
        p_pair = p_types[t] / len(prompts) / (k * (k - 1) / 2)
        return Proposal(
            prompt_id=prompt.id, left=ProposedSide(left, lv), right=ProposedSide(right, rv),
            position_swapped=swapped, arm=f"overlap:{arm_name(lv, rv)}",
            propensity_score=float(p_pair * arm_p), arm_propensity=float(arm_p),
            edit_marginals={a: float(sum(p for p, c in zip(p_combo, self.combos) if a in c)) for a in self.attributes},
        )

    def propensity_of(self, annotator: AnnotatorContext, prompt_id: int,
                      left: ProposedSide, right: ProposedSide) -> tuple[float, float]:
        prompt = self.servable.get(prompt_id)
        names = set(self.attributes)
        if (prompt is None or left.base_response_id == right.base_response_id
                or not {left.base_response_id, right.base_response_id} <= set(prompt.response_ids)
                or not same_draws(left, right, names)):
            return 0.0, 0.0
        p_types = self.type_probabilities(annotator.group)
        t = self.types.index(prompt.task_type)
        k = len(prompt.response_ids)
        p_combo = self.combo_probabilities(annotator.group, prompt.task_type)
        index = {c: n for n, c in enumerate(self.combos)}
        arm_p = 0.5 * p_combo[index[on_set(left.edit_vector)]] * p_combo[index[on_set(right.edit_vector)]]
        p_pair = p_types[t] / len(self.by_type[prompt.task_type]) / (k * (k - 1) / 2)
        return float(p_pair * arm_p), float(arm_p)
