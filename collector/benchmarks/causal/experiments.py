"""The benchmark's experiments, each a plain function of a ``World`` returning rows.

- ``compare_policies``: every arm (and the oracle) collects ``labels`` labels per seed; each
  reward model is trained on them; ID / OOD / clean accuracy, the spurious attribute's reward
  sensitivity, labels-to-target curves (the headline model trained on the first ``n`` labels
  in the order they were collected) and each randomised attribute's AMCE against the truth.
- ``sweep_rho_latent``: limited overlap. A second latent quality factor (an attribute with a
  true effect, ``drop_answer`` by default) correlates with the base quality at ``rho_latent``
  in the natural pool; observational collection vs randomising that attribute. ID follows
  each rho; the OOD test set is the same for every rho (the correlation flipped at the
  largest rho swept), so the OOD column is comparable along the sweep.
- ``sweep_rho_assignment``: confounded assignment. Two annotator groups (= the two prompt
  types) judge by opposite objectives (opposite true effects of one attribute written into a
  random side); observationally each group sees its own prompt type with probability
  ``rho_assignment``. ``bt_mlp``, ``multihead`` and ``adversarial`` are evaluated on
  consistent (group = prompt type) and inconsistent pairs; the ``assignment_randomisation``
  policy is the product's way to get ``rho = 0.5``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from acquisition.core.errors import ConfigError
from acquisition.effects import amce, labelled_pairs
from collector.benchmarks.causal.engine import (
    HELD_OUT,
    Collection,
    Placement,
    Pool,
    accuracy,
    amce_rows,
    bake_held_out,
    build_pool,
    collect,
    embed_test,
    naive_amce,
    objective_amce_rows,
    place,
    population_amce,
    sensitivity,
    test_pairs,
    train,
)
from collector.benchmarks.causal.sources import Item, file_items, split_items, synthetic_items
from collector.benchmarks.causal.world import World
from collector.io.frames import pairs_frame

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_items(world: World, seed: int = 0) -> tuple[list[Item], list[Item]]:
    """The training pool and test prompts of benchmark seed ``seed``: every seed draws its own
    split, so test-set sampling error is inside the intervals over seeds."""
    src = world.source
    if src.kind == "synthetic":
        items = synthetic_items(src.train + src.test, src.seed, src.hidden_quality)
    else:
        items = file_items(src.path, src.flip_rate, world.annotators.noise)
    return split_items(items, src.train, src.test, src.seed + seed)


def _mirrored(model, tests: dict[str, Any], prefix: str = "mirror") -> float:
    """Accuracy over the mirrored OOD sets: every test item once with the spurious attribute on
    the better side and once on the worse side, so a spurious detector scores 0.5, not 0
    (``prefix="held_out"``: the same, written with the held-out realisation; NaN without one)."""
    if f"{prefix}_better" not in tests:
        return float("nan")
    return float(np.nanmean([accuracy(model, tests[f"{prefix}_better"]), accuracy(model, tests[f"{prefix}_worse"])]))


def _pre_embed(embed, pools: list[Pool], items: list[Item], tests: list[list[tuple[str, str, str]]]) -> None:
    """Embed every text known before collection in one length-sorted batch (cached)."""
    texts = {r["prompt"] for p in pools for r in p.records}
    texts |= {resp["text"] for p in pools for r in p.records for resp in r["responses"]}
    texts |= {item.prompt for item in items}
    texts |= {t for triples in tests for triple in triples for t in triple}
    embed(sorted(texts))


CLEAN = "clean pool: upper bound"
CONTROL = "rho=0.5 control"


def run_label(arm: str, pool: str) -> str:
    """How a run is named in every table: the arm, and the pool where it is not the natural one."""
    return arm if pool in ("natural", "oracle") else f"{arm} [{pool}]"


def compare_policies(world: World, workdir: Path, embed, embedder, log: Log = _stderr) -> dict[str, list[dict[str, Any]]]:
    """Every arm collects from the same natural pool, where the confounded attributes are already
    in the texts; the oracle from a pool where they are independent of quality. Beside them: the
    randomised arm on that unconfounded pool (the negative control: randomising should buy
    nothing there) and, where the world asks, on a pool with nothing written in (the clean-pool
    upper bound the old benchmark reported as its result)."""
    main, curves, effects = [], [], []
    spurious = world.confounding.spurious
    for seed in range(world.seeds):
        train_items, test_items = load_items(world, seed)
        rng = np.random.default_rng(1_000 + seed)
        natural = build_pool(train_items, place(train_items, world, rng), world.confounding.planted)
        oracle = build_pool(train_items, place(train_items, world, rng, p_spurious=0.5, p_latent=0.5, p_unrandomised=0.5),
                            world.confounding.planted)
        unrandomised = world.confounding.unrandomised
        # nothing written in but the attributes no arm randomises (where they naturally are)
        clean = build_pool(train_items, place(train_items, world, rng, only_unrandomised=True) if unrandomised else None)
        tests_txt = {
            "id": test_pairs(test_items, place(test_items, world, rng), world),
            "ood": test_pairs(test_items, place(test_items, world, rng, flipped=True), world),
            "clean": test_pairs(test_items, Placement([set()] * len(test_items), [set()] * len(test_items)), world),
            "mirror_better": test_pairs(test_items, place(test_items, world, rng, p_spurious=1.0, p_latent=0.5,
                                                          p_unrandomised=0.5), world),
            "mirror_worse": test_pairs(test_items, place(test_items, world, rng, p_spurious=0.0, p_latent=0.5,
                                                         p_unrandomised=0.5), world),
        }
        if set(spurious) & HELD_OUT:  # the same mirrored sets, padded with sentences no editor writes
            tests_txt["held_out_better"] = test_pairs(test_items, place(test_items, world, rng, p_spurious=1.0,
                                                                        p_latent=0.5, p_unrandomised=0.5),
                                                      world, writer=bake_held_out)
            tests_txt["held_out_worse"] = test_pairs(test_items, place(test_items, world, rng, p_spurious=0.0,
                                                                       p_latent=0.5, p_unrandomised=0.5),
                                                     world, writer=bake_held_out)
        if unrandomised:  # mirrored on the attribute no arm randomised, everything else neutral
            for name, p in (("unrandomised_better", 1.0), ("unrandomised_worse", 0.0)):
                tests_txt[name] = test_pairs(test_items, place(test_items, world, rng, p_spurious=0.5, p_latent=0.5,
                                                               p_unrandomised=p), world)
        started = time.perf_counter()
        _pre_embed(embed, [natural, oracle, clean], test_items, list(tests_txt.values()))
        log(f"[seed {seed}] pools and test sets embedded in {time.perf_counter() - started:.1f} s")
        tests = {k: embed_test(k, v, embed) for k, v in tests_txt.items()}
        runs: list[tuple[str, str, Pool]] = [(arm, "natural", natural) for arm in world.policies]
        runs.append(("oracle", "oracle", oracle))
        randomising = [a for a in world.policies if a != "observational"]
        if world.negative_controls:  # every interventional arm again where there is nothing to deconfound
            runs += [(arm, CONTROL, oracle) for arm in randomising]  # the oracle is observational on this pool
        if world.arms.clean_upper_bound and randomising:
            runs.append((randomising[0], CLEAN, clean))
        for arm, pool_name, pool in runs:
            started = time.perf_counter()
            label = run_label(arm, pool_name)
            collection = collect(world, arm, [(pool, ["default"])], seed, workdir / pool_name.split(":")[0], embedder)
            rows = collection.rows()
            collected = time.perf_counter() - started
            for n in world.curve_points if pool_name == "natural" else [world.labels]:
                model = train(rows[:n], world.models[0], world, embed, seed)
                curves.append({"policy": label, "seed": seed, "labels": n,
                               "id_accuracy": accuracy(model, tests["id"]), "ood_accuracy": accuracy(model, tests["ood"]),
                               "clean_accuracy": accuracy(model, tests["clean"]),
                               "mirrored_ood_accuracy": _mirrored(model, tests)})
            for name in world.models:
                model = train(rows, name, world, embed, seed)
                row = {"policy": label, "arm": arm, "pool": pool_name, "model": name, "seed": seed, "labels": len(rows),
                       **{f"{k}_accuracy": accuracy(model, tests[k]) for k in ("id", "ood", "clean")},
                       "mirrored_ood_accuracy": _mirrored(model, tests),
                       "held_out_mirrored_accuracy": _mirrored(model, tests, "held_out"),
                       "unrandomised_mirrored_accuracy": _mirrored(model, tests, "unrandomised")}
                for a in spurious:
                    row[f"sensitivity_{a}"] = sensitivity(model, test_items, a, embed)
                main.append(row)
            if arm not in ("observational", "oracle"):
                effects.extend(amce_rows(collection, world).assign(arm=label).to_dict("records"))
            collection.close()
            log(f"[seed {seed}] {label}: {len(rows)} labels, collected in {collected:.1f} s, "
                f"{world.models[0]} mirrored OOD {main[-len(world.models)]['mirrored_ood_accuracy']:.3f} "
                f"({time.perf_counter() - started:.1f} s)")
    return {"main": main, "curves": [c for c in curves if "[" not in str(c["policy"])], "amce": effects}


def sweep_rho_latent(world: World, workdir: Path, embed, embedder, log: Log = _stderr) -> list[dict[str, Any]]:
    """Table 1's form: accuracy as the latent factors' correlation grows, observational vs
    randomising the latent factor, both measured at every rho: at each rho both arms collect
    from that rho's natural pool (the factor already written where it correlates with quality;
    the randomised arm switches it on or off from there) and both models are fitted again. Each
    seed draws its own split; the test sets are shared by every rho of a seed, so differences
    are paired by seed. rho = 0 is the negative control: no correlation, so randomising should
    buy nothing there. Tests: ID
    (the training correlation), decorrelated (the factor on either side with probability 0.5),
    mirrored (every test item with the factor on the better side and again on the worse side)
    and flipped OOD (the correlation reversed at the largest rho swept)."""
    latent = world.sweeps.latent
    annotators = dataclasses.replace(world.annotators, attribute_effects={
        **world.annotators.attribute_effects, latent: world.sweeps.latent_effect})
    base = dataclasses.replace(
        world, annotators=annotators, confounding=dataclasses.replace(world.confounding, spurious=[], latent=latent),
        arms=dataclasses.replace(world.arms, randomised=[latent]),  # randomise exactly the latent factor
    )
    out = []
    for seed in range(world.seeds):
        train_items, test_items = load_items(base, seed)  # each seed its own split
        test_rng = np.random.default_rng(7_000 + seed)
        ood_p = 1.0 - (1.0 + max(world.sweeps.rho_latent)) / 2.0
        shared = {
            "ood": embed_test("ood", test_pairs(test_items, place(test_items, base, test_rng, p_latent=ood_p), base), embed),
            "decorrelated": embed_test("decorrelated", test_pairs(test_items, place(test_items, base, test_rng, p_latent=0.5),
                                                                  base), embed),
            "mirror_better": embed_test("mirror_better", test_pairs(test_items, place(test_items, base, test_rng, p_latent=1.0),
                                                                    base), embed),
            "mirror_worse": embed_test("mirror_worse", test_pairs(test_items, place(test_items, base, test_rng, p_latent=0.0),
                                                                  base), embed),
        }
        for rho in world.sweeps.rho_latent:
            w = dataclasses.replace(base, confounding=dataclasses.replace(base.confounding, rho_latent=rho))
            rng = np.random.default_rng(5_000 + seed)
            natural = build_pool(train_items, place(train_items, w, rng))
            tests = {"id": embed_test("id", test_pairs(test_items, place(test_items, w, rng), w), embed), **shared}
            fitted = []
            for policy in ("observational", "randomised_attributes"):
                collection = collect(w, policy, [(natural, ["default"])], seed, workdir / f"latent-{rho}", embedder)
                fitted.append((policy, train(collection.rows(), world.models[0], w, embed, seed)))
                collection.close()
            for policy, m in fitted:
                out.append({"sweep": "rho_latent", "rho": rho, "policy": policy, "model": world.models[0], "seed": seed,
                            "id_accuracy": accuracy(m, tests["id"]), "ood_accuracy": accuracy(m, tests["ood"]),
                            "decorrelated_accuracy": accuracy(m, tests["decorrelated"]),
                            "mirrored_accuracy": (accuracy(m, tests["mirror_better"]) + accuracy(m, tests["mirror_worse"])) / 2})
            log(f"[rho_latent {rho} seed {seed}] observational decorrelated {out[-2]['decorrelated_accuracy']:.3f}, "
                f"randomised {out[-1]['decorrelated_accuracy']:.3f}")
    return out


ASSIGNMENT_CONTROL = "assignment_randomisation [groups agree: control]"


def _assignment_world(world: World, group_effects: dict[str, float]) -> World:
    spec = world.assignment
    annotators = dataclasses.replace(
        world.annotators,
        group_effects={**world.annotators.group_effects, **{g: {spec.attribute: e} for g, e in group_effects.items()}},
        cell_effects={g: {t: {spec.attribute: e} for t, e in cells.items()} for g, cells in spec.cell_effects.items()},
        objectives={g: f"{'likes' if e > 0 else 'dislikes' if e < 0 else 'ignores'} {spec.attribute}"
                    for g, e in group_effects.items()},
    )
    return dataclasses.replace(world, annotators=annotators,
                               confounding=dataclasses.replace(world.confounding, spurious=[], latent=""))


def sweep_rho_assignment(world: World, workdir: Path, embed, embedder, log: Log = _stderr) -> list[dict[str, Any]]:
    """Consistent / inconsistent accuracy of each model as assignment gets more confounded.
    With ``sweeps.conditioning_control``, randomised assignment is run once more in a world
    where the groups agree (each group's effect replaced by their mean): there a model that
    sees c has nothing to gain over one that does not, the control beside the conditioning
    headline."""
    spec = world.assignment
    groups = sorted(spec.group_effects)
    w = _assignment_world(world, spec.group_effects)
    mean_effect = float(np.mean(list(spec.group_effects.values())))
    w_agree = _assignment_world(world, {g: mean_effect for g in groups})
    if spec.cell_effects:
        w_agree = dataclasses.replace(w_agree, annotators=dataclasses.replace(w_agree.annotators, cell_effects={}))
    train_items, test_items = load_items(w)
    types = {item.task_type for item in train_items}
    if not set(groups) <= types:
        raise ConfigError(
            f"assignment.group_effects: groups must be prompt types of the source ({', '.join(sorted(types))}); "
            f"got {', '.join(groups)}."
        )
    out = []
    for seed in range(world.seeds):
        train_items, test_items = load_items(w, seed)  # each seed its own split
        rng = np.random.default_rng(9_000 + seed)

        def objective_placement(items: list[Item]) -> Placement:
            sides = rng.random(len(items)) < 0.5
            return Placement([{spec.attribute} if s else set() for s in sides],
                             [set() if s else {spec.attribute} for s in sides])

        train_place = objective_placement(train_items)
        test_place = objective_placement(test_items)

        def cell_tests(truth: World) -> list[tuple[str, str, str, Any]]:
            """(kind, group, prompt type, test set): every (prompt type x c) cell, judged by ``truth``."""
            tests = []
            for kind in ("consistent", "inconsistent"):
                for g in groups:
                    keep = [i for i, it in enumerate(test_items) if (it.task_type == g) == (kind == "consistent")]
                    sub = Placement([test_place.on_better[i] for i in keep], [test_place.on_worse[i] for i in keep])
                    prompt_type = g if kind == "consistent" else next(t for t in groups if t != g)
                    tests.append((kind, g, prompt_type, embed_test(kind, test_pairs([test_items[i] for i in keep], sub,
                                                                                     truth, group=g), embed, group=g)))
            return tests

        tests = cell_tests(w)
        runs: list[tuple[str, float | None, Collection, World, list]] = []
        for rho in world.sweeps.rho_assignment:
            own = rng.random(len(train_items)) < rho
            assigned = {g: [i for i, it in enumerate(train_items) if (it.task_type == g) == bool(own[i])] for g in groups}
            pools = []
            for g in groups:
                idx = assigned[g]
                sub = Placement([train_place.on_better[i] for i in idx], [train_place.on_worse[i] for i in idx])
                pools.append((build_pool([train_items[i] for i in idx], sub), [g]))
            runs.append(("observational", rho, collect(w, "observational", pools, seed, workdir / f"assign-{rho}",
                                                       embedder), w, tests))
        whole = build_pool(train_items, train_place)
        runs.append(("assignment_randomisation", None,
                     collect(w, "assignment_randomisation", [(whole, groups)], seed, workdir / "assign-random", embedder),
                     w, tests))
        if world.sweeps.conditioning_control:
            runs.append((ASSIGNMENT_CONTROL, None,
                         collect(w_agree, "assignment_randomisation", [(whole, groups)], seed,
                                 workdir / "assign-agree", embedder), w_agree, cell_tests(w_agree)))
        for policy, rho_value, collection, truth, cells in runs:
            rows = collection.rows()
            for name in world.sweeps.models:
                model = train(rows, name, truth, embed, seed)
                acc: dict[str, list[tuple[float, int]]] = {kind: [] for kind in ("consistent", "inconsistent")}
                row = {"sweep": "rho_assignment", "rho": rho_value, "policy": policy, "model": name, "seed": seed}
                for kind, g, prompt_type, test in cells:
                    value = accuracy(model, test)
                    acc[kind].append((value, len(test.prompt)))
                    row[f"cell c={g} x {prompt_type}"] = value
                for kind, parts in acc.items():
                    n = sum(k for _, k in parts)
                    row[f"{kind}_accuracy"] = sum(a * k for a, k in parts) / n if n else float("nan")
                out.append(row)
            collection.close()
            log(f"[rho_assignment {rho_value if rho_value is not None else policy} seed {seed}] "
                + ", ".join(f"{r['model']} {r['consistent_accuracy']:.3f}/{r['inconsistent_accuracy']:.3f}"
                            for r in out[-len(world.sweeps.models):]))
    return out


HEADLINE_FIGURES = ("id_accuracy", "ood_accuracy", "clean_accuracy", "mirrored_ood_accuracy",
                    "held_out_mirrored_accuracy", "unrandomised_mirrored_accuracy")


def headline(main: list[dict[str, Any]], model: str) -> dict[str, dict[str, Any]]:
    """``{policy: {id_accuracy, ood_accuracy, oracle_ood_accuracy, clean_accuracy,
    mirrored_ood_accuracy, ci95: {figure: [low, high]}, n_seeds}}``: means over seeds with
    t intervals (each seed resamples the split), for the arms on the natural pool (the controls
    and the clean-pool upper bound are in ``headline_checks``)."""
    from collector.benchmarks.causal.report import mean_ci95

    rows = [r for r in main if r["model"] == model]
    oracle_ood = [r["ood_accuracy"] for r in rows if r["policy"] == "oracle"]
    out: dict[str, dict[str, Any]] = {}
    for policy in dict.fromkeys(r["policy"] for r in rows if r["policy"] != "oracle" and "[" not in r["policy"]):
        sel = [r for r in rows if r["policy"] == policy]
        entry: dict[str, Any] = {}
        ci: dict[str, list[float] | None] = {}
        for figure in HEADLINE_FIGURES:
            mean, low, high = mean_ci95([r[figure] for r in sel])
            entry[figure] = None if np.isnan(mean) else round(mean, 4)  # JSON has no NaN
            ci[figure] = None if low is None or high is None else [round(low, 4), round(high, 4)]
        mean, low, high = mean_ci95(oracle_ood)
        entry["oracle_ood_accuracy"] = round(mean, 4)
        ci["oracle_ood_accuracy"] = None if low is None or high is None else [round(low, 4), round(high, 4)]
        out[policy] = {**entry, "ci95": ci, "n_seeds": len(sel)}
    return out


def labels_to_target(curves: list[dict[str, Any]], policy: str, reference: str = "randomised_attributes") -> dict[str, Any]:
    """Labels ``policy`` needs (mean curve over seeds, linear interpolation) to reach the
    ``reference`` policy's final mean OOD accuracy; ``None`` if it never does."""
    def mean_curve(name: str) -> list[tuple[int, float]]:
        points = sorted({r["labels"] for r in curves if r["policy"] == name})
        return [(n, float(np.mean([r["ood_accuracy"] for r in curves if r["policy"] == name and r["labels"] == n])))
                for n in points]

    ref, cur = mean_curve(reference), mean_curve(policy)
    if not ref or not cur:
        return {"policy": policy, "reference": reference, "target": None, "labels": None, "share": None}
    target_labels, target = ref[-1]
    needed = None
    for i, (n, a) in enumerate(cur):
        if a >= target:
            if i == 0:
                needed = n  # already there at the first point: an upper bound
            else:
                n0, a0 = cur[i - 1]
                needed = int(round(n0 + (target - a0) / (a - a0) * (n - n0)))
            break
    return {"policy": policy, "reference": reference, "target": round(target, 4),
            "reference_labels": target_labels, "labels": needed,
            "share": None if needed is None else round(needed / target_labels, 3)}


def objective_effects(world: World, workdir: Path, embedder, log: Log = _stderr) -> list[dict[str, Any]]:
    """The objective as an intervention: ``randomised_attributes`` with the study's objective
    randomised (``world.objective``) and simulated annotators whose true effects depend on the
    objective shown; each attribute's AMCE within each objective against the truth."""
    obj = world.objective
    study = {"randomise_objective": obj.randomise, "objectives": list(obj.objectives),
             "objective_probabilities": list(obj.probabilities)}
    rows: list[dict[str, Any]] = []
    for seed in range(world.seeds):
        train_items, _ = load_items(world, seed)
        started = time.perf_counter()
        collection = collect(world, "randomised_attributes", [(build_pool(train_items), ["default"])], seed, workdir,
                             embedder, study=study)
        rows.extend(objective_amce_rows(collection, world).to_dict("records"))
        collection.close()
        log(f"[seed {seed}] objective experiment: {world.labels} labels ({time.perf_counter() - started:.1f} s)")
    return rows


def amce_check(world: World, workdir: Path, embedder, log: Log = _stderr) -> list[dict[str, Any]]:
    """``world.amce_check``: per seed, two annotator groups (their own true effects, from
    ``annotators.group_effects``) label under ``randomised_attributes``; each attribute's AMCE
    per group is compared with the population AMCE, computed apart from the labels by Monte
    Carlo over the design; then the observational arm's naive estimate of each spurious
    attribute against its population AMCE (a negative control that should fail)."""
    check = world.amce_check
    attrs = list(world.arms.randomised)
    w = dataclasses.replace(world, labels=check.labels)
    rows: list[dict[str, Any]] = []
    truth_rng = np.random.default_rng(99)
    train_items, _ = load_items(w, 0)
    truth = {g: population_amce(train_items, attrs, w, g, check.draws, truth_rng) for g in check.groups}
    for seed in range(check.seeds):
        started = time.perf_counter()
        items, _ = load_items(w, 0)  # the population is fixed; collections vary by seed
        rng = np.random.default_rng(5_000 + seed)
        collection = collect(w, "randomised_attributes", [(build_pool(items), list(check.groups))], seed,
                             workdir / "amce_check", embedder)
        pairs = labelled_pairs(pairs_frame(collection.store))
        table = amce(pairs, attributes=attrs, by=["annotator_group"])
        for r in table.itertuples():
            true = truth[str(r.annotator_group)][r.attribute]
            rows.append({"kind": "randomised", "seed": seed, "group": str(r.annotator_group), "attribute": r.attribute,
                         "estimate": r.estimate, "se": r.se, "population_amce": true,
                         "z": (r.estimate - true) / r.se if r.se else np.nan,
                         "covered": bool(r.ci_low <= true <= r.ci_high)})
        collection.close()
        natural = build_pool(items, place(items, w, rng))
        observational = collect(w, "observational", [(natural, list(check.groups))], seed, workdir / "amce_check",
                                embedder)
        for attribute in world.confounding.spurious:
            estimate, se = naive_amce(observational, attribute)
            true = float(np.mean([truth[g][attribute] for g in check.groups]))
            rows.append({"kind": "naive observational", "seed": seed, "group": "all", "attribute": attribute,
                         "estimate": estimate, "se": se, "population_amce": true, "z": (estimate - true) / se,
                         "covered": bool(abs(estimate - true) <= 1.96 * se)})
        observational.close()
        log(f"[seed {seed}] AMCE check: 2 x {check.labels} labels ({time.perf_counter() - started:.1f} s)")
    return rows


def run(world: World, workdir: Path, embedder, log: Log = _stderr) -> dict[str, Any]:
    """Every experiment the world asks for; returns the results as plain data."""
    embed = embedder.embed
    started = time.perf_counter()
    results: dict[str, Any] = {"world": dataclasses.asdict(world)}
    if world.policies:
        results.update(compare_policies(world, workdir, embed, embedder, log))
    else:  # a world that only runs the AMCE check or the objective experiment
        results.update({"main": [], "curves": [], "amce": []})
    results["headline"] = headline(results["main"], world.models[0])
    results["labels_to_target"] = [labels_to_target(results["curves"], p) for p in world.policies
                                   if p != "randomised_attributes"]
    results["sweeps"] = []
    if world.sweeps.rho_latent:
        results["sweeps"] += sweep_rho_latent(world, workdir, embed, embedder, log)
    if world.sweeps.rho_assignment:
        results["sweeps"] += sweep_rho_assignment(world, workdir, embed, embedder, log)
    results["amce_check"] = amce_check(world, workdir, embedder, log) if world.amce_check.seeds else []
    results["objective_amce"] = objective_effects(world, workdir, embedder, log) if world.objective.randomise else []
    if world.active_protocol.seeds and world.active_protocol.served:
        from collector.benchmarks.causal.active_served import run_active_served

        results["active_protocol"] = run_active_served(world, embedder, workdir / "active-served", log)
    elif world.active_protocol.seeds:
        from collector.benchmarks.causal.active_protocol import run_active_protocol

        results["active_protocol"] = {**run_active_protocol(world, embed, log), "path": "harness"}
    from collector.benchmarks.causal.report import headline_checks

    results["headline_checks"] = headline_checks(results).to_dict("records")
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    return results
