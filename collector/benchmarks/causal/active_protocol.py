"""Does active acquisition earn its place? A label-efficiency protocol against random.

A synthetic pool of ``pool_factor`` times the largest budget in candidate pairs (every pair of
``responses_per_prompt`` responses to a prompt, so pair difficulty runs from obvious to a coin
flip), held-out test prompts, and four strategies that each spend the same budgets:

- ``random``: uniform draws from the pool (the reference);
- ``diversity``: BAL-PM's prompt-entropy term alone (prompts far from every labelled prompt);
- ``bald``: BALD from a last-layer Laplace Bradley-Terry head (``models.laplace``);
- ``bald_diversity``: standardised BALD plus ``diversity_weight`` times the standardised
  diversity term (BAL-PM, Melo et al., 2024, with the Laplace head in place of its ensemble).

Targeted strategies update the reward model (``warm_steps`` more optimiser steps on every
label so far, as an online trainer does) and rescore every candidate every ``refresh_every``
labels, and draw the next batch by softrank sampling with a uniform floor
(``acquisition.selection``), at most one pair per prompt per batch, logging each draw's
probability. Scores are computed on exactly the pair that is then labelled (no attribute
edits in this protocol). Seeds are paired: one seed fixes the pool / test split, the first
batch of ``refresh_every`` random labels and the simulated annotator's draw for every
candidate, so two strategies that pick the same pair get the same label.

Accuracy at each budget comes from a fresh fit (the world's ``[active_protocol.model]``),
the same procedure for every strategy, so the curves differ only in which labels were bought.
Per seed, the labels a strategy needs to reach random's accuracy at ``reference_budget`` are
read from its accuracy curve made monotone (isotonic regression over budgets) and interpolated
in log-budget; the ratio to ``reference_budget`` is summarised by its median over seeds with a
percentile bootstrap CI over seeds. Random's own ratio is printed too: it is at most 1 by
construction and shows how flat its curve is near the reference.

The harness calls the product's scoring and selection functions directly rather than serving
through SQLite (64 refits per strategy and seed would take hours through the store); the
serving path of the ``active`` policy is what the ``active_mixture`` arm of the main comparison
measures.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

import numpy as np
import torch

from acquisition.selection import PromptDiversity, sample_batch, softrank_probabilities, standardise
from collector.benchmarks.causal.sources import synthetic_multi_items
from collector.benchmarks.causal.world import World
from models.laplace import bald, fit_laplace, moments_from_differences, trunk_features
from models.reward import PairData, build_model

Log = Callable[[str], None]


def _pairs(k: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(k) for b in range(a + 1, k)]


def labels_needed(budgets: list[int], accuracies: list[float], target: float) -> float:
    """Labels at which the isotonic (non-decreasing) fit of the curve first reaches ``target``,
    interpolated linearly in log-budget; ``inf`` when it never does."""
    from scipy.optimize import isotonic_regression

    fitted = isotonic_regression(np.asarray(accuracies, dtype=float)).x
    for i, a in enumerate(fitted):
        if a >= target - 1e-12:
            if i == 0:
                return float(budgets[0])
            a0, b0, b1 = fitted[i - 1], math.log(budgets[i - 1]), math.log(budgets[i])
            return float(math.exp(b0 + (target - a0) / (a - a0) * (b1 - b0)))
    return math.inf


def reference_accuracy(budgets: list[int], curve: dict[int, float], reference: int) -> float:
    """Random's accuracy at ``reference`` read from its isotonic fit (so one lucky or unlucky
    evaluation does not set the target, and random itself needs at most ``reference`` labels)."""
    from scipy.optimize import isotonic_regression

    fitted = isotonic_regression(np.asarray([curve[b] for b in budgets], dtype=float)).x
    return float(fitted[budgets.index(reference)])


def bootstrap_median(values: list[float], draws: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """Median and its 95% percentile bootstrap interval over seeds (inf allowed: a strategy
    that never reached the target)."""
    v = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    medians = np.median(v[rng.integers(len(v), size=(draws, len(v)))], axis=1)
    low, high = np.quantile(medians, [0.025, 0.975], method="inverted_cdf")  # no interpolation: inf stays inf
    return float(np.median(v)), float(low), float(high)


def run_active_protocol(world: World, embed, log: Log) -> dict[str, Any]:
    cfg = world.active_protocol
    k = cfg.responses_per_prompt
    combos = _pairs(k)
    largest = max(cfg.budgets)
    pool_prompts = math.ceil(cfg.pool_factor * largest / len(combos))
    started = time.perf_counter()
    items = synthetic_multi_items(pool_prompts + cfg.test_prompts, k, world.source.seed, cfg.hidden_quality)
    prompt_emb = embed([it.prompt for it in items], progress=True)
    response_emb = embed([r for it in items for r in it.responses], progress=True).reshape(len(items), k, -1)
    quality = np.array([it.qualities for it in items])
    log(f"[active protocol] {len(items)} prompts x {k} responses embedded in {time.perf_counter() - started:.1f} s; "
        f"pool {pool_prompts} prompts = {pool_prompts * len(combos)} candidate pairs "
        f"({pool_prompts * len(combos) / largest:.0f}x the largest budget)")
    a_idx = np.array([a for a, _ in combos])
    b_idx = np.array([b for _, b in combos])
    runs: list[dict[str, Any]] = []
    for seed in range(cfg.seeds):
        seed_started = time.perf_counter()
        order = np.random.default_rng(31_000 + seed).permutation(len(items))
        pool, test = order[:pool_prompts], order[pool_prompts:]
        cand_prompt = np.repeat(pool, len(combos))  # index into items
        cand_slot = np.repeat(np.arange(len(pool)), len(combos))  # index into pool
        cand_a, cand_b = np.tile(a_idx, len(pool)), np.tile(b_idx, len(pool))
        gap = quality[cand_prompt, cand_a] - quality[cand_prompt, cand_b]
        first_wins = np.random.default_rng(32_000 + seed).random(len(gap)) < 1.0 / (1.0 + np.exp(-gap / cfg.noise))
        t_prompt = np.repeat(test, len(combos))
        t_a, t_b = np.tile(a_idx, len(test)), np.tile(b_idx, len(test))
        t_gap = quality[t_prompt, t_a] - quality[t_prompt, t_b]
        keep = t_gap != 0
        better = np.where(t_gap > 0, t_a, t_b)[keep]
        worse = np.where(t_gap > 0, t_b, t_a)[keep]
        t_prompt = t_prompt[keep]
        test_set = (prompt_emb[t_prompt], response_emb[t_prompt, better], response_emb[t_prompt, worse])
        first_batch, _ = sample_batch(np.full(len(gap), 1.0 / len(gap)), cfg.refresh_every,
                                      np.random.default_rng(33_000 + seed), groups=cand_slot)

        def fit(chosen: np.ndarray, fit_seed: int):
            data = PairData(prompt_emb[cand_prompt[chosen]], response_emb[cand_prompt[chosen], cand_a[chosen]],
                            response_emb[cand_prompt[chosen], cand_b[chosen]],
                            first_wins[chosen].astype(np.float32), np.zeros(len(chosen), dtype=np.int64))
            torch.manual_seed(fit_seed)  # the initial weights too: strategies stay paired
            model = build_model("bt_mlp", cfg.model, prompt_emb.shape[1], ["default"])
            model.fit(data, seed=fit_seed)
            return model, data

        def update(model, chosen: np.ndarray, fit_seed: int):
            """The scoring model between budgets: the previous one trained ``warm_steps`` more
            steps on every label so far (as an online trainer would), not refitted from scratch."""
            data = PairData(prompt_emb[cand_prompt[chosen]], response_emb[cand_prompt[chosen], cand_a[chosen]],
                            response_emb[cand_prompt[chosen], cand_b[chosen]],
                            first_wins[chosen].astype(np.float32), np.zeros(len(chosen), dtype=np.int64))
            full = model.config
            model.config = dataclasses.replace(full, steps=cfg.warm_steps, early_stopping=False)
            model.fit(data, seed=fit_seed)
            model.config = full
            return model, data

        def test_accuracy(model) -> float:
            p, _ = model.preference(*test_set)
            return float((p > 0.5).mean())

        for strategy in cfg.strategies:
            rng = np.random.default_rng(34_000 + seed)
            chosen = list(first_batch)
            draw_p = [1.0 / len(gap)] * len(first_batch)
            labelled = np.zeros(len(gap), dtype=bool)
            labelled[first_batch] = True
            diversity = PromptDiversity(prompt_emb[pool])
            diversity.add(cand_slot[first_batch])
            curve: dict[int, float] = {}
            model = data = None
            for n in range(cfg.refresh_every, largest + 1, cfg.refresh_every):
                if n in cfg.budgets:  # the curve: a fresh fit, the same procedure for every strategy
                    model, data = fit(np.asarray(chosen), seed * 1_000 + n)
                    curve[n] = test_accuracy(model)
                elif strategy in ("bald", "bald_diversity"):  # the scorer: the last model, updated
                    model, data = update(model, np.asarray(chosen), seed * 1_000 + n)
                if n == largest:
                    break
                if strategy == "random":
                    probs = np.full(len(gap), 1.0 / len(gap))
                else:
                    div = diversity.scores()[cand_slot]
                    if strategy == "diversity":
                        score = div
                    else:
                        assert model is not None and data is not None  # fitted at the first budget
                        laplace = fit_laplace(model, data, cfg.prior_precision)
                        h = trunk_features(model, np.repeat(prompt_emb[pool], k, axis=0),
                                           response_emb[pool].reshape(len(pool) * k, -1))
                        h = h.reshape(h.shape[0], len(pool), k, -1)
                        d = h[:, cand_slot, cand_a] - h[:, cand_slot, cand_b]
                        score = bald(*moments_from_differences(laplace, d))
                        if strategy == "bald_diversity":
                            score = standardise(score) + cfg.diversity_weight * standardise(div)
                    probs = softrank_probabilities(score, cfg.floor, cfg.beta)
                batch, p = sample_batch(probs, cfg.refresh_every, rng, groups=cand_slot, exclude=labelled)
                labelled[batch] = True
                chosen.extend(batch.tolist())
                draw_p.extend(p.tolist())
                diversity.add(cand_slot[batch])
            chosen_arr = np.asarray(chosen)
            runs.append({"seed": seed, "strategy": strategy, "curve": curve,
                         "mean_abs_gap": float(np.abs(gap[chosen_arr]).mean()),
                         "distinct_prompts": int(len(np.unique(cand_slot[chosen_arr]))),
                         "min_draw_probability": float(min(draw_p))})
        seed_runs = [r for r in runs if r["seed"] == seed]
        log(f"[active protocol seed {seed}] " + ", ".join(
            f"{r['strategy']} {r['curve'][cfg.reference_budget]:.3f}@{cfg.reference_budget}" for r in seed_runs)
            + f" ({time.perf_counter() - seed_started:.1f} s)")
    return {"runs": runs, "summary": summarise(runs, cfg.budgets, cfg.reference_budget),
            "pool_pairs": pool_prompts * len(combos), "test_pairs": int(keep.sum()) if cfg.seeds else 0}


def summarise(runs: list[dict[str, Any]], budgets: list[int], reference: int) -> list[dict[str, Any]]:
    """Per strategy: mean accuracy at each budget, and the median label ratio to reach
    random's accuracy at ``reference`` with its bootstrap CI (seeds paired)."""
    by = {(r["seed"], r["strategy"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    strategies = list(dict.fromkeys(r["strategy"] for r in runs))
    out = []
    for s in strategies:
        ratios = []
        for seed in seeds:
            target = reference_accuracy(budgets, by[(seed, "random")]["curve"], reference)
            curve = by[(seed, s)]["curve"]
            ratios.append(labels_needed(budgets, [curve[b] for b in budgets], target) / reference)
        median, low, high = bootstrap_median(ratios)
        out.append({"strategy": s, "seeds": len(seeds),
                    **{f"accuracy@{b}": float(np.mean([by[(seed, s)]["curve"][b] for seed in seeds])) for b in budgets},
                    "ratio_median": median, "ratio_ci95": [low, high],
                    "ratios": ratios,
                    "never_reached": int(sum(math.isinf(r) for r in ratios)),
                    "mean_abs_gap": float(np.mean([by[(seed, s)]["mean_abs_gap"] for seed in seeds])),
                    "distinct_prompts": float(np.mean([by[(seed, s)]["distinct_prompts"] for seed in seeds]))})
    return out
