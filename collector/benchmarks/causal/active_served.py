"""The active protocol through the product's serving path: what a user of ``active`` gets.

The harness (``active_protocol.py``) calls the scoring and selection functions directly. This
module measures the product instead, with the protocol's pool, test split, budgets and seeds:

- each strategy is a fresh SQLite database (``Store``) holding the pool, with the ``active``
  policy activated: ``random`` is ``active`` with ``uniform_share = 1`` (uniform draws over
  the pairs left, the same batch-without-replacement regime and per-prompt cap, no scores);
  ``bald`` (and ``bald_diversity``) is ``active`` with the protocol's floor, fed by the worker;
- simulated annotators label through ``Collector.next_pair`` / ``submit``
  (``collector.jobs.simulate``), ``refresh_every`` labels at a time;
- between refreshes the worker's ``OnlineTrainer.train_once`` retrains the reward model on the
  labels so far and publishes Laplace BALD softrank weights for every base pair of the pool; the
  next request rebuilds the policy over them (``Collector`` watches the model version);
- the probability logged with every served pair is checked: each is at least the floor over the
  pairs left, and no base pair is served twice;
- accuracy at each budget comes from a fresh fit on the labels stored so far (the same
  procedure for every strategy), scored on the held-out prompts.

The negative control runs the same thing on a pool of pure label noise (every response of equal
quality, so every label is a coin flip): no strategy can learn, and the label ratio's CI must
cover 1.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from acquisition.core.errors import ConfigError
from collector.benchmarks.causal.active_protocol import summarise
from collector.benchmarks.causal.sources import synthetic_multi_items
from collector.benchmarks.causal.world import World
from collector.jobs.simulate import SimulatedAnnotatorConfig, simulate
from collector.store import Store
from models.online import OnlineTrainer, TrainingConfig, build_pair_data
from models.reward import build_model

Log = Callable[[str], None]
SERVED_STRATEGIES = ("random", "bald", "bald_diversity")


def _pairs(k: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(k) for b in range(a + 1, k)]


def run_active_served(world: World, embedder, workdir: Path, log: Log) -> dict[str, Any]:
    cfg = world.active_protocol
    unknown = [s for s in cfg.strategies if s not in SERVED_STRATEGIES]
    if unknown:
        raise ConfigError(f"active_protocol.strategies: {', '.join(unknown)} cannot be served by the product "
                          f"(served strategies: {', '.join(SERVED_STRATEGIES)}).")
    k = cfg.responses_per_prompt
    largest = max(cfg.budgets)
    pool_prompts = math.ceil(cfg.pool_factor * largest / len(_pairs(k)))
    items = synthetic_multi_items(pool_prompts + cfg.test_prompts, k, world.source.seed, cfg.hidden_quality)
    started = time.perf_counter()
    embed = embedder.embed
    embed([it.prompt for it in items] + [r for it in items for r in it.responses])
    log(f"[active served] {len(items)} prompts x {k} responses embedded in {time.perf_counter() - started:.1f} s; "
        f"pool {pool_prompts} prompts = {pool_prompts * len(_pairs(k))} candidate pairs")
    result = _protocol(world, items, pool_prompts, embedder, workdir / "real", log, noise_only=False)
    if cfg.noise_control:
        noise = _protocol(world, items, pool_prompts, embedder, workdir / "noise", log, noise_only=True)
        result["noise_control"] = {"runs": noise["runs"], "summary": noise["summary"]}
    result["path"] = "serving path"
    return result


def _protocol(world: World, items, pool_prompts: int, embedder, workdir: Path, log: Log,
              noise_only: bool) -> dict[str, Any]:
    cfg = world.active_protocol
    embed = embedder.embed
    runs: list[dict[str, Any]] = []
    test_pairs = 0
    for seed in range(cfg.seeds):
        seed_started = time.perf_counter()
        order = np.random.default_rng(31_000 + seed).permutation(len(items))
        pool, test = [items[i] for i in order[:pool_prompts]], [items[i] for i in order[pool_prompts:]]
        records = [{"prompt": it.prompt, "task_type": it.task_type,
                    "responses": [{"text": t, "quality": 0.0 if noise_only else q}
                                  for t, q in zip(it.responses, it.qualities)]} for it in pool]
        triples = [(it.prompt, it.responses[a], it.responses[b]) if it.qualities[a] > it.qualities[b]
                   else (it.prompt, it.responses[b], it.responses[a])
                   for it in test for a, b in _pairs(len(it.responses)) if it.qualities[a] != it.qualities[b]]
        test_pairs = len(triples)
        test_set = tuple(embed([t[i] for t in triples]) for i in range(3))
        for strategy in cfg.strategies:
            db = workdir / f"seed{seed}" / strategy / "arm.db"
            store = Store(db)
            store.add_pool(records, source="active-protocol")
            store.activate_policy("active", {
                "attributes": [], "design_acquisition": "none", "per_prompt_cap": 1,
                "uniform_share": 1.0 if strategy == "random" else cfg.floor})
            trainer = None if strategy == "random" else OnlineTrainer(
                functools.partial(Store, db), store.checkpoints(),
                TrainingConfig(model="bt_mlp", retrain_every=cfg.refresh_every, eval_responses=0, min_labels=10,
                               seed=seed, params=cfg.model, acquisition="bald",
                               diversity_weight=cfg.diversity_weight if strategy == "bald_diversity" else 0.0,
                               laplace_prior=cfg.prior_precision), embedder)
            annotator = SimulatedAnnotatorConfig(noise=cfg.noise, tie_strength=0.0)
            curve: dict[int, float] = {}
            for chunk, n in enumerate(range(cfg.refresh_every, max(cfg.budgets) + 1, cfg.refresh_every)):
                simulate(store, labels=cfg.refresh_every, annotators=4, seed=seed * 10_007 + chunk, config=annotator)
                if n in cfg.budgets:  # the curve: a fresh fit on the labels stored so far
                    data, _ = build_pair_data(store.training_rows(), embed)
                    torch.manual_seed(seed * 1_000 + n)
                    model = build_model("bt_mlp", cfg.model, data.prompt.shape[1], data.group_names)
                    model.fit(data, seed=seed * 1_000 + n)
                    p, _ = model.preference(*test_set)
                    curve[n] = float((p > 0.5).mean())
                if trainer is not None and n < max(cfg.budgets):
                    trainer.train_once()  # the worker: retrain, publish BALD weights for every base pair
            runs.append({"seed": seed, "strategy": strategy, "curve": curve, **_served_checks(store, cfg.floor
                                                                                          if strategy != "random" else 1.0)})
            store.close()
        seed_runs = [r for r in runs if r["seed"] == seed]
        log(f"[active served{' noise control' if noise_only else ''} seed {seed}] " + ", ".join(
            f"{r['strategy']} {r['curve'][cfg.reference_budget]:.3f}@{cfg.reference_budget}" for r in seed_runs)
            + f" ({time.perf_counter() - seed_started:.1f} s)")
    return {"runs": runs, "summary": summarise(runs, cfg.budgets, cfg.reference_budget),
            "pool_pairs": pool_prompts * len(_pairs(cfg.responses_per_prompt)), "test_pairs": test_pairs}


def _served_checks(store: Store, floor: float) -> dict[str, Any]:
    """What the served pairs say about the design: distinct base pairs (none served twice), the
    smallest pair probability logged, whether every one kept its floor over the pairs left,
    and the mean quality gap bought."""
    rows = store.db.execute(
        "SELECT sp.prompt_id, sp.left_base_response_id, sp.right_base_response_id, "
        "sp.propensity_score / sp.arm_propensity, abs(l.quality - r.quality) FROM served_pairs sp "
        "JOIN responses l ON l.id = sp.left_base_response_id JOIN responses r ON r.id = sp.right_base_response_id "
        "ORDER BY sp.id").fetchall()
    total = sum(len(p.response_ids) * (len(p.response_ids) - 1) // 2 for p in store.pool_snapshot().servable)
    keys = [(p, min(a, b), max(a, b)) for p, a, b, _, _ in rows]
    floors_kept = all(q >= floor / (total - i) - 1e-12 for i, (_, _, _, q, _) in enumerate(rows))
    return {"served_twice": len(keys) - len(set(keys)), "min_draw_probability": float(min(r[3] for r in rows)),
            "floor_kept": bool(floors_kept), "mean_abs_gap": float(np.mean([r[4] for r in rows])),
            "distinct_prompts": len({r[0] for r in rows})}
