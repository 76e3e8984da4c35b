"""Scripted annotators that label through the same ``Collector`` calls as the page.

By default they prefer the response with the better base quality under Bradley-Terry noise
with Davidson ties, and ignore every attribute (attributes are spurious unless a true effect
is configured), so any attribute effect a reward model learns from their labels is spurious.
Where a prompt's responses have no known quality (imported human data), the imported human
preferences are the truth: the simulated annotator prefers the human-chosen response and
disagrees with it with probability ``flip_rate`` (ties stay ties; ``simulation_qualities``).

For the causal benchmark's worlds (``collector/benchmarks/causal``) the simulator also knows:

- ``base_attributes``: attributes already written into a base response's text (a world's
  natural, confounded pool), whose true effects count exactly like an edit's, until an edit
  that received "off" takes one away (the two-way editors remove what the text had);
- ``objectives``: the judging objective recorded for each annotator group;
- ``true_left_outcome``: each served pair's exact ``P(left) + P(tie) / 2``, whose AMCE on the
  realised design is the true AMCE (``acquisition.effects.amce(..., left_outcome=...)``);
- ``quality_gap_for_flip_rate``: the quality gap at which an annotator prefers the truly
  better response with probability ``1 - flip_rate`` (semi-synthetic data: the human label
  is the truth, the simulated annotator follows it up to that flip rate).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from acquisition.core.errors import ConfigError, DeconfoundError
from acquisition.core.records import EditVector
from acquisition.editors import EDITORS
from collector.serving.service import Collector
from collector.store import Store


@dataclass
class SimulatedAnnotatorConfig:
    # Bradley-Terry scale: P(left) ~ sigmoid((u_left - u_right) / noise); quality is on a 1-5 scale
    noise: float = 1.0
    # Davidson tie parameter: P(tie) = nu * sqrt(pi_l * pi_r) / (pi_l + pi_r + nu * sqrt(pi_l * pi_r))
    tie_strength: float = 0.1
    # true effect of each attribute on the utility, in quality points (default: none for style
    # attributes, which are spurious; quality-changing controls such as drop_answer keep theirs)
    attribute_effects: dict[str, float] = field(default_factory=dict)
    # per annotator group overrides of `attribute_effects`: {group: {attribute: effect}}
    group_effects: dict[str, dict[str, float]] = field(default_factory=dict)
    # per shown objective (the study's objective text on the pair) overrides of both tables above:
    # {"Judge which response is more helpful" = {verbosity = 0.5}}; the objective is the
    # annotator's confounder C, so a randomised objective identifies its effect
    objective_effects: dict[str, dict[str, float]] = field(default_factory=dict)
    # per (annotator group, prompt type) overrides of everything above, for objectives whose
    # effect depends on the prompt: {group = {task_type = {attribute = effect}}}
    cell_effects: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    # the judging objective recorded for each group's annotators, e.g. {helpful = "helpfulness"}
    objectives: dict[str, str] = field(default_factory=dict)
    # with no known quality: how often an annotator disagrees with the imported human preference
    flip_rate: float = 0.1

    def effect(self, attribute: str, group: str | None = None, objective: str | None = None,
               task_type: str | None = None) -> float:
        """The true utility effect of ``attribute`` for an annotator of ``group`` shown ``objective``
        on a prompt of ``task_type``."""
        if group is not None and task_type is not None and attribute in self.cell_effects.get(group, {}).get(task_type, {}):
            return self.cell_effects[group][task_type][attribute]
        if objective is not None and attribute in self.objective_effects.get(objective, {}):
            return self.objective_effects[objective][attribute]
        if group is not None and attribute in self.group_effects.get(group, {}):
            return self.group_effects[group][attribute]
        if attribute in self.attribute_effects:
            return self.attribute_effects[attribute]
        return EDITORS[attribute].default_effect if attribute in EDITORS else 0.0

    def validate(self, where: str = "simulate") -> None:
        if self.noise <= 0:
            raise ConfigError(f"{where}.noise: must be positive; got {self.noise}.")
        if self.tie_strength < 0:
            raise ConfigError(f"{where}.tie_strength: must be zero or positive; got {self.tie_strength}.")
        if not 0.0 < self.flip_rate < 0.5:
            raise ConfigError(f"{where}.flip_rate: must be strictly between 0 and 0.5; got {self.flip_rate}.")
        tables = [("attribute_effects", self.attribute_effects)] + [
            (f"group_effects.{g}", effects) for g, effects in self.group_effects.items()
        ] + [(f"objective_effects.{o!r}", effects) for o, effects in self.objective_effects.items()] + [
            (f"cell_effects.{g}.{t}", effects) for g, cells in self.cell_effects.items() for t, effects in cells.items()]
        for name, effects in tables:
            for a in effects:
                if a not in EDITORS:
                    raise ConfigError(
                        f"{where}.{name}.{a}: unknown attribute; known: {', '.join(sorted(EDITORS))}."
                    )


def choice_probabilities(
    quality_left: float, quality_right: float, on_left: set[str], on_right: set[str],
    config: SimulatedAnnotatorConfig, group: str | None = None, objective: str | None = None,
    task_type: str | None = None,
) -> tuple[float, float, float]:
    """``(P(left), P(right), P(tie))`` of a simulated annotator of ``group`` shown ``objective``:
    Bradley-Terry on quality plus the true attribute effects, with Davidson ties."""
    u_left = quality_left + sum(config.effect(a, group, objective, task_type) for a in on_left)
    u_right = quality_right + sum(config.effect(a, group, objective, task_type) for a in on_right)
    d = (u_left - u_right) / config.noise
    pi_l, pi_r = math.exp(d / 2), math.exp(-d / 2)
    tie = config.tie_strength * math.sqrt(pi_l * pi_r)
    total = pi_l + pi_r + tie
    return pi_l / total, pi_r / total, tie / total


def choose(
    quality_left: float, quality_right: float, on_left: set[str], on_right: set[str],
    config: SimulatedAnnotatorConfig, rng: np.random.Generator, group: str | None = None,
    objective: str | None = None, task_type: str | None = None,
) -> tuple[str, int | None]:
    """One simulated judgement by an annotator of ``group``: ``(choice, strength)``; a tie
    has no strength, as on the page."""
    p_left, p_right, _ = choice_probabilities(quality_left, quality_right, on_left, on_right, config, group, objective,
                                              task_type)
    r = rng.random()
    choice = "left" if r < p_left else ("right" if r < p_left + p_right else "tie")
    d = abs(math.log(p_left / p_right))
    strength = 1 if d < 1 else (2 if d < 2.5 else 3)
    return choice, (None if choice == "tie" else strength)


def _on(edit_vector: EditVector | str, base: Collection[str] = ()) -> set[str]:
    """The attributes a response shows as served: those its base text carries (``base``),
    then the treatment received, not the draw: an attribute switched on is there, one switched
    off was taken away (the two-way editors remove what the text had), and one that did not
    apply leaves the base as it was."""
    out = set(base)
    vector = EditVector.parse(edit_vector)  # a store row's, or a pairs frame's exported text
    for a in vector:
        flag = vector.received(a)
        if flag is True:
            out.add(a)
        elif flag is False:
            out.discard(a)
    return out


def quality_gap_for_flip_rate(flip_rate: float, noise: float = 1.0) -> float:
    """The quality gap at which a Bradley-Terry annotator (no ties) prefers the better response
    with probability ``1 - flip_rate``."""
    if not 0.0 < flip_rate < 0.5:
        raise ConfigError(f"flip_rate: must be strictly between 0 and 0.5; got {flip_rate}.")
    return noise * math.log((1.0 - flip_rate) / flip_rate)


@dataclass(frozen=True)
class Qualities:
    """The utility a simulated annotator sees in each base response of the pool."""

    quality: dict[int, float]  # base response id -> quality
    known: int  # responses whose quality was stored with the pool
    from_preferences: int  # responses whose quality comes from the imported human preferences

    def describe(self, config: SimulatedAnnotatorConfig) -> str:
        if not self.from_preferences:
            return f"simulated annotators judge by the known quality of {self.known} responses"
        return (f"{self.from_preferences} responses have no known quality: simulated annotators follow the "
                f"imported human preferences (chosen over rejected, ties as ties), disagreeing with "
                f"probability {config.flip_rate:g}" + (f"; {self.known} use their known quality" if self.known else ""))


def simulation_qualities(store: Store, config: SimulatedAnnotatorConfig) -> Qualities:
    """Known qualities where every response of a prompt has one; elsewhere qualities derived
    from the imported human preferences: each preference puts the chosen response
    ``gap / 2`` above the rejected one (averaged over a response's preferences; a tie or both-bad
    puts them level), with the gap at which a Bradley-Terry annotator prefers the chosen response
    with probability ``1 - flip_rate``.

    Raises:
        DeconfoundError: a servable prompt has neither known qualities nor human preferences,
            or the pool is empty.
    """
    pool = store.pool_snapshot()
    if not pool.servable:
        raise DeconfoundError("simulate: the pool has no prompt with two responses; import or "
                              "`init --demo` a pool first (nothing was written).")
    stored = pool.response_quality
    gap = quality_gap_for_flip_rate(config.flip_rate, config.noise)
    votes: dict[int, list[float]] = {}
    for pref in store.imported_preferences():
        half = 0.0 if pref["tie"] else gap / 2
        votes.setdefault(pref["chosen_response_id"], []).append(half)
        votes.setdefault(pref["rejected_response_id"], []).append(-half)
    quality: dict[int, float] = {}
    known = derived = 0
    for prompt in pool.servable:
        ids = prompt.response_ids
        if all(stored.get(r) is not None for r in ids):
            quality.update({r: float(stored[r] or 0.0) for r in ids})
            known += len(ids)
        elif all(r in votes for r in ids):
            quality.update({r: float(np.mean(votes[r])) for r in ids})
            derived += len(ids)
        else:
            missing = next(r for r in ids if stored.get(r) is None and r not in votes)
            raise DeconfoundError(
                f"simulate: response {missing} of prompt {prompt.id} has neither a known quality nor an imported "
                "human preference, so a simulated annotator cannot judge it (nothing was written).")
    return Qualities(quality, known, derived)


def true_left_outcome(store: Store, pairs: pd.DataFrame, config: SimulatedAnnotatorConfig,
                      base_attributes: Mapping[int, set[str]] | None = None) -> pd.Series:
    """``P(left) + P(tie) / 2`` of the simulated annotator for each row of a ``pairs_frame``:
    the outcome whose AMCE on the realised design is the true effect."""
    base_attributes = base_attributes or {}
    quality = simulation_qualities(store, config).quality
    out = []
    for r in pairs.itertuples():
        q, on = [], []
        for side in ("left", "right"):
            rid = int(getattr(r, f"{side}_base_response_id"))
            q.append(quality[rid])
            on.append(_on(getattr(r, f"{side}_edit_vector"), base_attributes.get(rid, ())))
        objective = getattr(r, "objective", None)
        objective = objective if isinstance(objective, str) else None
        task_type = getattr(r, "task_type", None)
        p_l, _, p_t = choice_probabilities(q[0], q[1], on[0], on[1], config, r.annotator_group, objective,
                                           task_type if isinstance(task_type, str) else None)
        out.append(p_l + p_t / 2)
    return pd.Series(out, index=pairs.index, dtype=float)


def _gold_quality(store: Store, response_id: int, cache: dict[int, float]) -> float:
    """A gold pair's response is outside the pool: its quality comes from the gold file."""
    q = store.response(response_id)["quality"]
    if q is None:
        raise DeconfoundError(f"simulate: gold response {response_id} has no quality (give `<side>_quality` in the "
                              "gold file for simulated annotators).")
    cache[response_id] = float(q)
    return cache[response_id]


def simulate(
    store: Store,
    labels: int = 200,
    annotators: int = 5,
    groups: list[str] | None = None,
    seed: int = 0,
    config: SimulatedAnnotatorConfig | None = None,
    base_attributes: Mapping[int, set[str]] | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Have ``annotators`` simulated people give ``labels`` labels in turn (``progress(done,
    total, seconds)`` is called as they go, at most about once a second, and at the end).

    Annotators named ``sim-<group>-<i>`` are created on first use and reused afterwards, with
    the objective ``config.objectives`` gives their group. ``base_attributes`` maps a base
    response id to the attributes its text already carries; their true effects count like
    an edit's.

    Returns:
        counts of the choices made, the ids of the simulated annotators, and ``truth``: what
        they judged by (``Qualities.describe``).
    """
    config = config or SimulatedAnnotatorConfig()
    config.validate()
    groups = groups or ["default"]
    if labels < 1 or annotators < 1:
        raise ConfigError(f"simulate: --labels must be at least 1 (got {labels}) and --annotators at least 1 "
                          f"(got {annotators}).")
    if store.active_policy() is None:
        raise ConfigError("simulate: no active policy; run `init` or `policy apply FILE` first (nothing was written).")
    qualities = simulation_qualities(store, config)  # refuses before anything is written
    base_attributes = base_attributes or {}
    rng = np.random.default_rng(seed)
    collector = Collector(store, seed=seed)
    existing = {(a["name"], a["group_name"]): a for a in store.annotators() if a["is_simulated"]}
    people = []
    for i in range(annotators):
        group = groups[i % len(groups)]
        name = f"sim-{group}-{i + 1}"
        row = existing.get((name, group)) or store.add_annotator(
            name, group=group, covariates={"simulated": "true"}, objective=config.objectives.get(group),
            is_simulated=True,
        )[0]
        people.append(row)
    counts: dict[str, int] = {}
    quality = dict(qualities.quality)
    task_types = {p.id: p.task_type for p in store.pool_snapshot().prompts} if config.cell_effects else {}
    started = reported = time.monotonic()
    for n in range(labels):
        person = people[n % len(people)]
        view = collector.next_pair(person["id"])
        pair = store.served_pair(view.served_pair_id)
        qs = [quality[rid] if rid in quality else _gold_quality(store, rid, quality)
              for rid in (pair["left_base_response_id"], pair["right_base_response_id"])]
        on = [_on(pair[f"{side}_edit_vector"], base_attributes.get(pair[f"{side}_base_response_id"], ()))
              for side in ("left", "right")]
        task_type = task_types.get(pair["prompt_id"]) if config.cell_effects else None
        choice, strength = choose(qs[0], qs[1], on[0], on[1], config, rng, group=person["group_name"],
                                  objective=pair.get("objective"), task_type=task_type)
        collector.submit(person["id"], view.served_pair_id, choice, strength=strength)
        counts[choice] = counts.get(choice, 0) + 1
        if progress is not None and (n + 1 == labels or time.monotonic() - reported >= 1.0):
            reported = time.monotonic()
            progress(n + 1, labels, reported - started)
    return {"labels": labels, "choices": counts, "annotator_ids": [p["id"] for p in people],
            "truth": qualities.describe(config)}
