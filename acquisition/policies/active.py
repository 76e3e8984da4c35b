"""Active acquisition: spend labels where the reward model is least certain.

Scores are computed off the request path: after each retrain the worker stores, in the
checkpoint, a weight for every base pair of the pool (``acquisition_scores.npz``; by default
softrank weights of BALD from a last-layer Laplace head, ``models.online``). Between two
refreshes the policy draws a batch *without replacement*, as the causal benchmark's active
protocol showed works:

- a base pair served once (labelled, skipped or left) is never served again by ``active``
  (quality-control repeats are served by quality control, and say so);
- at most ``per_prompt_cap`` pairs of one prompt per refresh (the policy is rebuilt when the
  worker publishes new scores), while any uncapped prompt has a pair left;
- every remaining pair keeps a logged uniform floor: the pair is drawn from
  ``uniform_share * uniform + (1 - uniform_share) * weight / sum(weight)`` over the pairs still
  eligible, so the propensity recorded with each pair is its exact probability given what was
  served before it (``prepare`` reads the served pairs; ``propose`` changes nothing).

Then attributes are switched at random like ``randomised_attributes`` (or by design-space
scores). Selection follows BAL-PM (Melo et al., 2024) and stochastic batch acquisition
(Kirsch et al., 2023); the uniform slice keeps a random control so the gain can be measured.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquisition.core.errors import ConfigError
from acquisition.core.pool import PoolSnapshot
from acquisition.design import DesignScores, design_points
from acquisition.editors import DEFAULT_ATTRIBUTES, edit_seed, get_editor
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
from acquisition.policies.randomised import RandomisedAttributesConfig


class AcquisitionScores:
    """Disagreement per unordered base pair, from one model version: ``pairs`` rows
    ``(prompt id, low response id, high response id)`` with their ``values`` (or a dict)."""

    def __init__(self, version: str, scores: Mapping[tuple[int, int, int], float] | None = None, *,
                 pairs: np.ndarray | None = None, values: np.ndarray | None = None) -> None:
        self.version = version
        if scores is not None:
            pairs = np.array(list(scores), dtype=np.int64).reshape(-1, 3)
            values = np.array(list(scores.values()), dtype=np.float64)
        self.pairs = np.asarray(pairs if pairs is not None else np.zeros((0, 3)), dtype=np.int64).reshape(-1, 3)
        self.values = np.asarray(values if values is not None else np.zeros(0), dtype=np.float64)
        lo, hi = self.pairs[:, 1:].min(axis=1), self.pairs[:, 1:].max(axis=1)
        keys = pair_keys(lo, hi)
        self._order = np.argsort(keys, kind="stable")
        self._keys = keys[self._order]

    @functools.cached_property
    def scores(self) -> dict[tuple[int, int, int], float]:
        """``(prompt, low, high) -> score`` (for tests and tools; the policy uses ``lookup``)."""
        return {(int(p), int(min(a, b)), int(max(a, b))): float(v) for (p, a, b), v in zip(self.pairs, self.values)}

    def lookup(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """The score of each unordered pair ``(low[i], high[i])``, NaN where none was stored."""
        keys = pair_keys(low, high)
        k = np.searchsorted(self._keys, keys).clip(max=max(len(self._keys) - 1, 0))
        found = (self._keys[k] == keys) if len(self._keys) else np.zeros(len(keys), dtype=bool)
        return np.where(found, self.values[self._order[k]] if len(self._keys) else np.nan, np.nan)


def pair_keys(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """One int64 per unordered pair of response ids (ids below 2**31)."""
    return (np.asarray(low, dtype=np.int64) << 32) | np.asarray(high, dtype=np.int64)


def base_pairs(pool: PoolSnapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every unordered base pair of the servable prompts, prompt by prompt in pool order and
    ``(i, j)`` order inside a prompt: ``(prompt ids, low ids, high ids, responses of the prompt)``.
    Built from the columns, a block of prompts with the same number of responses at a time."""
    a = pool.arrays
    index = pool.servable.positions
    k = a.counts[index]
    per = k * (k - 1) // 2
    start = np.concatenate([[0], np.cumsum(per)])[:-1]
    n = int(per.sum())
    prompt, low, high, size = (np.empty(n, dtype=np.int64) for _ in range(4))
    for kk in np.unique(k):
        rows = np.flatnonzero(k == kk)
        i, j = np.triu_indices(int(kk), 1)
        where = (start[rows][:, None] + np.arange(len(i))[None, :]).ravel()
        first = a.offsets[index[rows]][:, None]
        prompt[where] = np.repeat(a.prompt_ids[index[rows]], len(i))
        low[where] = a.response_ids[(first + i[None, :]).ravel()]
        high[where] = a.response_ids[(first + j[None, :]).ravel()]
        size[where] = kk
    return prompt, low, high, size


@dataclass
class ActiveConfig:
    # share of pairs drawn uniformly at random from the eligible ones (the floor on every pair's
    # probability; the active protocol's 10%)
    uniform_share: float = 0.1
    # pairs of one prompt served between two refreshes (0: no cap); relaxed once every prompt
    # with a pair left has reached it
    per_prompt_cap: int = 1
    # attributes switched on each side at random, as in randomised_attributes ([]: pairs as they are)
    attributes: list[str] = field(default_factory=lambda: list(DEFAULT_ATTRIBUTES))
    probability: float = 0.5
    # "eubo" or "bald": outside the uniform share, draw the two sides' edit vectors by BoTorch's
    # EUBO or BALD on a PairwiseGP over the attribute design space (fitted by the worker);
    # "none": coin flips only
    design_acquisition: str = "eubo"

    def validate(self, where: str) -> None:
        if self.design_acquisition not in ("eubo", "bald", "none"):
            raise ConfigError(
                f"{where}.design_acquisition: must be 'eubo', 'bald' or 'none'; got {self.design_acquisition!r}."
            )
        if not 0.0 < self.uniform_share <= 1.0:
            raise ConfigError(
                f"{where}.uniform_share: must be in (0, 1] so every pair keeps a positive "
                f"probability; got {self.uniform_share}."
            )
        if self.per_prompt_cap < 0:
            raise ConfigError(f"{where}.per_prompt_cap: must be 0 (no cap) or more; got {self.per_prompt_cap}.")
        if not self.attributes:  # pair selection alone: no attribute is switched
            if self.design_acquisition != "none":
                raise ConfigError(f"{where}.design_acquisition: needs attributes to design over; set it to 'none' "
                                  "or name attributes.")
            return
        RandomisedAttributesConfig(attributes=self.attributes, probability=self.probability).validate(where)


@register_policy
class Active(Policy):
    name = "active"
    family = "active"
    description = "Base pairs where the reward-model ensemble disagrees most, mixed with a uniform slice."
    config_class = ActiveConfig
    inputs = ("acquisition_scores", "served_pairs", "design_scores")

    @classmethod
    def needs(cls, config: ActiveConfig) -> frozenset[str]:
        return frozenset(cls.inputs if config.design_acquisition != "none" else cls.inputs[:2])

    @classmethod
    def design_request(cls, config: ActiveConfig) -> tuple[list[str], str] | None:
        return None if config.design_acquisition == "none" else (list(config.attributes), config.design_acquisition)

    def __init__(self, config: ActiveConfig, pool: PoolSnapshot,
                 acquisition_scores: AcquisitionScores | None = None,
                 served_pairs: Callable[[int], list[tuple[int, int, int, int]]] | None = None,
                 design_scores: DesignScores | None = None) -> None:
        super().__init__(config, pool)
        self.editors = [get_editor(a) for a in config.attributes]
        self.on_probability = {e.name: config.probability for e in self.editors}
        self._setup_design(config, design_scores)
        self.scores = acquisition_scores
        prompt, low, high, _ = base_pairs(pool)
        self.pair_prompt, self.pair_low, self.pair_high = prompt, low, high
        raw_arr = (acquisition_scores.lookup(low, high) if acquisition_scores is not None
                   else np.full(len(low), np.nan))
        # a pair the live model has not scored yet (new in the pool, texts not embedded) is drawn
        # as if it had the average score, and served pairs record no score for it
        self.scored = np.isfinite(raw_arr)
        fill = np.nanmean(raw_arr) if self.scored.any() else 1.0
        self.raw = np.where(self.scored, raw_arr, fill).clip(min=0.0)
        self._key_order = np.argsort(pair_keys(low, high), kind="stable")
        self._sorted_keys = pair_keys(low, high)[self._key_order]
        # the pairs of a prompt are contiguous: prompt k's are rows [_prompt_start[k], _prompt_end[k]).
        # Arrays, not a dict of tuples: at a million responses that was a million small objects per
        # build, and the server's memory grew with every model swap (bench_scale)
        prompt_ids, first, self._prompt_of_pair, counts = np.unique(prompt, return_index=True, return_inverse=True,
                                                                    return_counts=True)
        self._prompt_start, self._prompt_end = first, first + counts
        self._raw_cdf = np.cumsum(self.raw)
        self._total = float(self._raw_cdf[-1]) if len(self.raw) else 0.0
        self.taken = np.zeros(len(low), dtype=bool)  # served before: never drawn again
        self._since_refresh = np.zeros(len(prompt_ids), dtype=np.int64)  # per prompt, served since this build
        self._served_pairs = served_pairs
        self._last_served = 0
        self._relaxed = False  # every prompt with a pair left reached its cap: the cap is off until the refresh
        if served_pairs is not None:
            self._take(served_pairs(0), count=False)
        self._recompute()

    # The state a draw depends on, kept up to date in O(pairs served) per request: which pairs are
    # eligible, how many (``_n``) and their total weight (``_w``).
    def _recompute(self) -> None:
        eligible = ~self.taken
        cap = self.config.per_prompt_cap
        if cap and not self._relaxed:
            uncapped = eligible & (self._since_refresh[self._prompt_of_pair] < cap)
            if uncapped.any() or not eligible.any():
                eligible = uncapped
            else:
                self._relaxed = True
        self.eligible = eligible
        self._n = int(eligible.sum())
        self._w = float(self.raw[eligible].sum())

    def _exclude(self, idx: np.ndarray) -> None:
        idx = idx[self.eligible[idx]]
        if len(idx):
            self.eligible[idx] = False
            self._n -= len(idx)
            self._w -= float(self.raw[idx].sum())

    def _take(self, rows: list[tuple[int, int, int, int]], count: bool) -> None:
        cap = self.config.per_prompt_cap
        for served_id, prompt_id, a, b in rows:
            self._last_served = max(self._last_served, served_id)
            i = self._pair_index(prompt_id, min(a, b), max(a, b))
            if i is None or a == b:  # an edited copy of one base response: no base pair to take
                continue
            self.taken[i] = True
            if not count:
                continue
            self._exclude(np.array([i]))
            k = self._prompt_of_pair[i]
            self._since_refresh[k] += 1
            if cap and not self._relaxed and self._since_refresh[k] >= cap:
                self._exclude(np.arange(self._prompt_start[k], self._prompt_end[k]))
        if count and (self._n == 0 or self._w <= 1e-9 * self._total):
            self._recompute()  # relax the cap once nothing uncapped is left; the total exact again near 0

    def prepare(self) -> None:
        """Read the pairs served since the last call (by any policy): each is taken, and counts
        towards its prompt's cap until the next refresh."""
        if self._served_pairs is None:
            return
        rows = self._served_pairs(self._last_served)
        if rows:
            self._take(rows, count=True)

    def pair_probability(self, i: int) -> float:
        """P(base pair ``i`` is the next draw), exactly, given what was served:
        ``uniform_share / n + (1 - uniform_share) * weight / total weight`` over the ``n`` pairs
        left (the weighted part uniform too when every weight left is 0)."""
        if not self.eligible[i]:
            return 0.0
        f = self.config.uniform_share
        targeted = self.raw[i] / self._w if self._w > 0 else 1.0 / self._n
        return f / self._n + (1.0 - f) * float(targeted)

    @property
    def probability(self) -> np.ndarray:
        """``pair_probability`` of every base pair, `(n_pairs,)` (tests and tools)."""
        f = self.config.uniform_share
        if not self._n:
            return np.zeros(len(self.raw))
        targeted = self.raw / self._w if self._w > 0 else np.full(len(self.raw), 1.0 / self._n)
        return np.where(self.eligible, f / self._n + (1.0 - f) * targeted, 0.0)

    @property
    def floor(self) -> np.ndarray:
        return np.where(self.eligible, self.config.uniform_share / max(self._n, 1), 0.0)

    def _draw_pair(self, rng: np.random.Generator) -> int:
        """One base pair from ``pair_probability``: the uniform part, or the weighted part, each
        by rejection from a fixed table while most of it is eligible (so a draw costs O(1)),
        else from the eligible pairs directly."""
        n_all = len(self.raw)
        if rng.random() < self.config.uniform_share or self._w <= 0:
            if self._n * 20 >= n_all:
                while True:
                    i = int(rng.integers(n_all))
                    if self.eligible[i]:
                        return i
            return int(rng.choice(np.flatnonzero(self.eligible)))
        total = self._total
        if self._w * 20 >= total:
            while True:
                i = min(int(np.searchsorted(self._raw_cdf, rng.random() * total, side="right")), n_all - 1)
                if self.eligible[i] and self.raw[i] > 0:
                    return i
        cdf = np.cumsum(np.where(self.eligible, self.raw, 0.0))
        return min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), n_all - 1)

    @property
    def pairs(self) -> list[tuple[int, int, int]]:
        """Every base pair ``(prompt, low, high)`` in the table's order (tests and tools)."""
        return list(zip(self.pair_prompt.tolist(), self.pair_low.tolist(), self.pair_high.tolist()))

    def _pair_index(self, prompt_id: int, a: int, b: int) -> int | None:
        key = int(pair_keys(np.array([a]), np.array([b]))[0])
        k = int(np.searchsorted(self._sorted_keys, key))
        if k < len(self._sorted_keys) and int(self._sorted_keys[k]) == key:
            i = int(self._key_order[k])
            return i if int(self.pair_prompt[i]) == prompt_id else None
        return None

    def _setup_design(self, config: ActiveConfig, design_scores: DesignScores | None) -> None:
        """Sampling weights over unordered pairs of distinct design points, from EUBO or BALD
        (only scores computed with the configured acquisition are used)."""
        names = list(config.attributes)
        self.design_pairs: list[tuple[frozenset, frozenset]] = []
        self.design_weight: np.ndarray | None = None
        if (config.design_acquisition == "none" or design_scores is None or list(design_scores.attributes) != names
                or design_scores.acquisition != config.design_acquisition):
            return
        points = [frozenset(a for a, bit in zip(names, row) if bit) for row in design_points(names)]
        self.design_pairs = [(points[i], points[j]) for i, j in itertools.combinations(range(len(points)), 2)]
        scores = np.asarray(design_scores.scores, dtype=float)
        if len(scores) != len(self.design_pairs):
            self.design_pairs = []
            return
        w = scores - scores.min() + 1e-3
        self.design_weight = w / w.sum()
        self._design_cdf = np.cumsum(self.design_weight)
        self._design_index = {frozenset(p): k for k, p in enumerate(self.design_pairs)}

    @functools.cached_property
    def edit_marginals(self) -> dict[str, float]:
        """P(attribute on for a side) under the edit mixture: the coin flips in the uniform share,
        else a design pair drawn by weight and put in either order with probability 1/2."""
        out = {}
        for name, p in self.on_probability.items():
            if self.design_weight is None:
                out[name] = p
                continue
            targeted = sum(float(w) * ((name in a) + (name in b)) / 2
                           for w, (a, b) in zip(self.design_weight, self.design_pairs))
            out[name] = self.config.uniform_share * p + (1.0 - self.config.uniform_share) * targeted
        return out

    def _edits_probability(self, left_on: frozenset, right_on: frozenset) -> float:
        """P(these on-sets on the left and right) under the edit mixture."""
        p_ind = coin_flip_probability((left_on, right_on), self.on_probability)
        if self.design_weight is None:
            return p_ind
        k = self._design_index.get(frozenset((left_on, right_on))) if left_on != right_on else None
        targeted = 0.5 * float(self.design_weight[k]) if k is not None else 0.0
        return self.config.uniform_share * p_ind + (1.0 - self.config.uniform_share) * targeted

    def _draw_edits(self, rng: np.random.Generator) -> tuple[frozenset, frozenset]:
        if self.design_weight is not None and rng.random() >= self.config.uniform_share:
            k = min(int(np.searchsorted(self._design_cdf, rng.random() * self._design_cdf[-1], side="right")),
                    len(self.design_pairs) - 1)
            a, b = self.design_pairs[k]
            return (a, b) if rng.integers(2) else (b, a)
        left, right = (frozenset(a for a, p in self.on_probability.items() if rng.random() < p) for _ in range(2))
        return left, right

    def propose(self, annotator: AnnotatorContext, rng: np.random.Generator) -> Proposal:
        if not self._n:
            raise ConfigError("active: every base pair of the pool has been served once; import more prompts or "
                              "activate another policy (a base pair is never served twice by active).")
        i = self._draw_pair(rng)
        prompt_id, a, b = int(self.pair_prompt[i]), int(self.pair_low[i]), int(self.pair_high[i])
        swapped = bool(rng.integers(2))
        left, right = (b, a) if swapped else (a, b)
        on_sets = self._draw_edits(rng)
        p_arm = 0.5 * self._edits_probability(*on_sets)
        vectors = [
            {e.name: {"on": e.name in on, "editor": e.name, "seed": edit_seed(rid, e.name)} for e in self.editors}
            for rid, on in zip((left, right), on_sets)
        ]
        return Proposal(
            prompt_id=prompt_id, left=ProposedSide(left, vectors[0]), right=ProposedSide(right, vectors[1]),
            position_swapped=swapped, arm=arm_name(vectors[0], vectors[1]),
            propensity_score=self.pair_probability(i) * p_arm, arm_propensity=p_arm,
            acquisition_score=float(self.raw[i]) if self.scores and self.scored[i] else None,
            model_version=self.scores.version if self.scores else None,
            edit_marginals=self.edit_marginals,
        )

    def propensity_of(self, annotator: AnnotatorContext, prompt_id: int,
                      left: ProposedSide, right: ProposedSide) -> tuple[float, float]:
        a, b = sorted((left.base_response_id, right.base_response_id))
        i = self._pair_index(prompt_id, a, b)
        names = {e.name for e in self.editors}
        if i is None or not self.eligible[i] or not same_draws(left, right, names):
            return 0.0, 0.0
        p_arm = 0.5 * self._edits_probability(on_set(left.edit_vector), on_set(right.edit_vector))
        return self.pair_probability(i) * p_arm, p_arm

    def candidate_table(self) -> dict[str, Any]:
        """Probabilities, floors and scores of every base pair (for tests and the researcher)."""
        return {"pairs": self.pairs, "probability": self.probability, "floor": self.floor, "score": self.raw}
