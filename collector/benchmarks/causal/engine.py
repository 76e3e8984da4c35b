"""The benchmark's moving parts: pools, one collection run per arm, training, evaluation.

Everything goes through the product's own code paths: each arm is a temporary SQLite
database (``Store``) holding a pool, with a real policy activated; simulated annotators label
through ``Collector`` (``collector.jobs.simulate.simulate``); reward models are trained on
``Store.training_rows()`` with ``models.online.build_pair_data`` and ``models.reward``; the
active arm's ensemble-disagreement scores are published by the worker's ``OnlineTrainer``.

Where confounding lives: in the *texts*. In the natural pool, each spurious attribute is
written into the better response with probability ``rho_spurious`` and into the worse one
otherwise; a latent attribute (one with a true effect) sits where it agrees with the base
quality with probability ``(1 + rho_latent) / 2``. Every arm collects from that one pool, as
a user of the product would: the interventional arms switch each attribute on or off at
random with the two-way editors, from the state the text has (padding that is there is taken
out when the draw says off), exactly as the product serves. A pool with nothing written in
(``clean``) is kept only as an explicitly labelled upper bound. ID test pairs are drawn like the natural pool on
held-out prompts; OOD pairs flip the placement probabilities; the oracle is the same model
and number of labels collected observationally from a pool where the attributes are
independent of quality (placement probability 0.5), evaluated OOD.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acquisition.core.config import to_dict
from acquisition.editors import edit_and_receive, edit_seed
from acquisition.effects import amce, labelled_pairs
from acquisition.policies import parse_policy_config
from collector.benchmarks.causal.sources import Item
from collector.benchmarks.causal.world import World
from collector.io.frames import pairs_frame
from collector.jobs.simulate import simulate, true_left_outcome
from collector.serving.study import update_study_config
from collector.store import Store
from models.online import OnlineTrainer, TrainingConfig, build_pair_data
from models.reward import RewardModel, build_model


def bake(text: str, attributes: set[str]) -> str:
    """``text`` with ``attributes`` written in by their editors (seeded by the text itself, so
    the same text always gets the same edit)."""
    return bake_received(text, attributes)[0]


def bake_received(text: str, attributes: set[str]) -> tuple[str, set[str]]:
    """``bake``, and the attributes the written text really carries (an attribute that does
    not apply to the text, a list in a two-sentence reply, is not written and not counted)."""
    if not attributes:
        return text, set()
    key = zlib.crc32(text.encode())
    vector = {a: {"on": True, "editor": a, "seed": edit_seed(key, a)} for a in sorted(attributes)}
    written, _, received = edit_and_receive(text, vector)
    return written, {a for a, r in received.items() if r["realised"]}


# Padding no editor ever writes: the OOD sets written with it ask whether a model learnt to
# ignore length, or only to ignore the editor's own filler sentences.
HELD_OUT_INTROS = (
    "Before getting into it, some background may be useful here.",
    "Let me set the scene a little before the details.",
)
HELD_OUT_FILLERS = (
    "All in all, that covers the essentials of what you asked about.",
    "Bear in mind that the particulars can vary from one case to the next.",
    "In the end, the main thing is to weigh these factors sensibly.",
    "Seen from a distance, the overall picture is fairly consistent.",
    "None of this is unusual, and many people arrive at the same place.",
    "As a final remark, the details above should be read together.",
    "That, in short, is the general shape of the situation.",
)
HELD_OUT = {"verbosity"}  # attributes with a held-out realisation


def bake_held_out(text: str, attributes: set[str]) -> str:
    """``bake`` with the held-out realisation of each attribute that has one (verbosity: the
    same amount of padding, +45% words, from sentences the editor never uses)."""
    held = attributes & HELD_OUT
    text = bake(text, attributes - held)
    if "verbosity" in held:
        rng = np.random.default_rng(zlib.crc32(text.encode()))
        fillers = list(HELD_OUT_FILLERS)
        rng.shuffle(fillers)
        intro = HELD_OUT_INTROS[int(rng.integers(len(HELD_OUT_INTROS)))]
        target, added, pads = max(len(text.split()) * 0.45, 20), len(intro.split()), []
        while added < target and fillers:
            pads.append(fillers.pop())
            added += len(pads[-1].split())
        text = f"{intro}\n\n{text}\n\n{' '.join(pads)}".strip()
    return text


@dataclass
class Placement:
    """Which attributes are written into each item's better and worse response."""

    on_better: list[set[str]]
    on_worse: list[set[str]]


def place(items: list[Item], world: World, rng: np.random.Generator, flipped: bool = False,
          p_spurious: float | None = None, p_latent: float | None = None,
          p_unrandomised: float | None = None, only_unrandomised: bool = False) -> Placement:
    """Draw the natural placement (or its flipped, OOD version) of the confounded attributes;
    ``only_unrandomised``: just the attributes no arm randomises (the interventional arms' pool)."""
    conf = world.confounding
    p_s = conf.rho_spurious if p_spurious is None else p_spurious
    p_l = (1.0 + conf.rho_latent) / 2.0 if p_latent is None else p_latent
    p_u = conf.rho_spurious if p_unrandomised is None else p_unrandomised
    if flipped:
        p_s, p_l, p_u = 1.0 - p_s, 1.0 - p_l, 1.0 - p_u
    latent_sign = np.sign(world.annotators.effect(conf.latent)) if conf.latent else 0.0
    on_better: list[set[str]] = []
    on_worse: list[set[str]] = []
    for _ in items:
        b, w = set[str](), set[str]()
        if not only_unrandomised:
            for a in conf.spurious:
                (b if rng.random() < p_s else w).add(a)
            if conf.latent:
                agrees = rng.random() < p_l  # the latent attribute's contribution favours the better response
                (b if agrees == (latent_sign > 0) else w).add(conf.latent)
        for a in conf.unrandomised:  # drawn last, so worlds without one draw exactly as before
            (b if rng.random() < p_u else w).add(a)
        on_better.append(b)
        on_worse.append(w)
    return Placement(on_better, on_worse)


@dataclass
class Pool:
    """Records for ``Store.add_pool`` and the attributes written into each response text."""

    records: list[dict[str, Any]]
    baked: dict[str, set[str]] = field(default_factory=dict)  # response text -> attributes in it


def build_pool(items: list[Item], placement: Placement | None = None, planted: str = "editor") -> Pool:
    """The pool's records with the placement written in. ``planted = "held_out"``: padding is
    written with sentences the ``verbosity`` editor never writes and cannot read, so no arm can
    take it out (natural length, as the editors see it); the other attributes as ``bake``."""
    records, baked = [], {}
    for i, item in enumerate(items):
        sides = []
        for text, quality, on in ((item.better, item.quality_better, placement.on_better[i] if placement else set()),
                                  (item.worse, item.quality_worse, placement.on_worse[i] if placement else set())):
            if planted == "held_out" and on & HELD_OUT:
                written, carried = bake_held_out(text, set(on)), set(on)  # counted for the truth, unseen by editors
            else:
                written, carried = bake_received(text, on)
            baked[written] = carried
            sides.append({"text": written, "quality": quality})
        records.append({"prompt": item.prompt, "task_type": item.task_type, "responses": sides})
    return Pool(records, baked)


@dataclass
class TestSet:
    """Held-out pairs as embeddings, first = the truly preferred response (``group`` may name
    the annotator group whose preference is the truth)."""

    name: str
    prompt: np.ndarray  # `(n, d)`
    first: np.ndarray  # `(n, d)`
    second: np.ndarray  # `(n, d)`
    group: str | None = None
    texts: list[tuple[str, str, str]] = field(default_factory=list)


def true_utility(quality: float, on: set[str], world: World, group: str | None = None,
                 task_type: str | None = None) -> float:
    return quality + sum(world.annotators.effect(a, group, None, task_type) for a in on)


def test_pairs(items: list[Item], placement: Placement, world: World,
               group: str | None = None, writer=None) -> list[tuple[str, str, str]]:
    """``(prompt, preferred, other)`` texts by the true utility; exact ties are left out.
    ``writer`` writes the attributes in (default ``bake``; ``bake_held_out`` for held-out
    realisations)."""
    writer = writer or bake
    out = []
    for i, item in enumerate(items):
        ub = true_utility(item.quality_better, placement.on_better[i], world, group, item.task_type)
        uw = true_utility(item.quality_worse, placement.on_worse[i], world, group, item.task_type)
        if ub == uw:
            continue
        b, w = writer(item.better, placement.on_better[i]), writer(item.worse, placement.on_worse[i])
        out.append((item.prompt, b, w) if ub > uw else (item.prompt, w, b))
    return out


def embed_test(name: str, triples: list[tuple[str, str, str]], embed, group: str | None = None) -> TestSet:
    return TestSet(name, embed([t[0] for t in triples]), embed([t[1] for t in triples]),
                   embed([t[2] for t in triples]), group, triples)


def accuracy(model: RewardModel, test: TestSet) -> float:
    """Share of test pairs where the model prefers the truly preferred response."""
    if not len(test.prompt):
        return float("nan")
    group = None
    if test.group is not None and (model.per_group or model.conditioned) and test.group in model.group_names:
        group = np.full(len(test.prompt), model.group_names.index(test.group), np.int64)
    p, _ = model.preference(test.prompt, test.first, test.second, group)
    return float((p > 0.5).mean())


def arm_policy(arm: str, world: World) -> tuple[str, dict[str, Any]]:
    """The policy (name, config table) an arm activates; validated like a policy file."""
    attrs = list(world.arms.randomised)
    randomised = {"attributes": attrs, "probability": 0.5}
    config: dict[str, Any]
    if arm in ("observational", "oracle"):
        name, config = "observational", {}
    elif arm == "assignment_randomisation":
        name, config = "assignment_randomisation", {"observational_share": 0.0}
    elif arm == "randomised_attributes":
        name, config = "randomised_attributes", randomised
    elif arm == "counterfactual_pairs":
        share = world.arms.counterfactual_share
        name, config = "mixture", {"components": [
            {"name": "counterfactual_pairs", "weight": share, "config": {"attributes": attrs}},
            {"name": "randomised_attributes", "weight": 1.0 - share, "config": randomised},
        ]}
    elif arm == "active_mixture":
        share = world.arms.active_share
        name, config = "mixture", {"components": [
            {"name": "active", "weight": share, "config": {
                "uniform_share": world.arms.active_uniform_share, "attributes": attrs, "probability": 0.5,
                "design_acquisition": world.arms.active_design}},
            {"name": "randomised_attributes", "weight": 1.0 - share, "config": randomised},
        ]}
    else:
        raise ValueError(f"unknown arm {arm!r}")
    return name, to_dict(parse_policy_config(name, config, f"arm {arm}"))


@dataclass
class Collection:
    """One arm's finished collection: its databases (one per pool) with the attributes written
    into each base response, by response id."""

    arm: str
    seed: int
    stores: list[tuple[Store, dict[int, set[str]]]]

    @property
    def store(self) -> Store:
        return self.stores[0][0]

    @property
    def baked(self) -> dict[int, set[str]]:
        return self.stores[0][1]

    def rows(self) -> list[dict[str, Any]]:
        """Every label of the arm, all pools, each pool in the order its labels were given."""
        return [r for s, _ in self.stores for r in s.training_rows()]

    def close(self) -> None:
        for s, _ in self.stores:
            s.close()


def collect(world: World, arm: str, pools: list[tuple[Pool, list[str]]], seed: int, workdir: Path,
            embedder, labels: int | None = None, study: dict[str, Any] | None = None) -> Collection:
    """Collect ``labels`` labels for one arm and seed in a fresh database under ``workdir``.

    Args:
        pools: ``(pool, groups)``: each pool is served to its own annotator groups (one pool for
            every arm, except the observational ``rho_assignment`` arm where each group sees the
            prompts it was assigned); labels are split evenly over the pools.
    """
    db = workdir / f"{arm}{'-study' if study else ''}-seed{seed}" / "arm.db"
    store = Store(db)
    name, config = arm_policy(arm, world)
    labels = world.labels if labels is None else labels
    # one database per pool (its own observational policy), labels merged at training time
    sub_stores: list[tuple[Store, list[str], dict[int, set[str]]]] = []
    for k, (pool, groups) in enumerate(pools):
        s = store if k == 0 else Store(db.parent / f"pool{k}" / "arm.db")
        s.add_pool(pool.records, source=world.name)
        s.activate_policy(name, config)
        if study:  # e.g. a randomised objective (collector.serving.study)
            update_study_config(s, study)
        snapshot = s.pool_snapshot()
        ids = {rid: pool.baked.get(text, set()) for rid, text in snapshot.response_text.items()}
        sub_stores.append((s, groups, {rid: on for rid, on in ids.items() if on}))
    trainer = None
    if arm == "active_mixture":
        trainer = OnlineTrainer(functools.partial(Store, db), store.checkpoints(), TrainingConfig(
            model=world.models[0], retrain_every=world.arms.retrain_every, eval_responses=0,
            min_labels=10, seed=seed, params=world.model), embedder)
    step = world.arms.retrain_every if trainer else labels
    done, chunk = 0, 0
    while done < labels:
        n = min(step, labels - done)
        for k, (s, groups, ids) in enumerate(sub_stores):
            share = n // len(sub_stores) + (1 if k < n % len(sub_stores) else 0)
            simulate(s, labels=share, annotators=max(world.arms.annotators, len(groups)), groups=groups,
                     seed=seed * 100_003 + chunk * 101 + k, config=world.annotators, base_attributes=ids)
        done += n
        chunk += 1
        if trainer is not None and done < labels:
            trainer.train_once()
    return Collection(arm, seed, [(s, ids) for s, _, ids in sub_stores])


def train(rows: list[dict[str, Any]], model_name: str, world: World, embed, seed: int) -> RewardModel:
    data, _ = build_pair_data(rows, embed)
    model = build_model(model_name, world.model, data.prompt.shape[1], data.group_names)
    model.fit(data, seed=seed)
    return model


def sensitivity(model: RewardModel, items: list[Item], attribute: str, embed) -> float:
    """Mean reward change when ``attribute`` is written into held-out responses, in reward SDs
    (the same definition as ``models.online.attribute_sensitivity``)."""
    texts = [t for item in items for t in (item.better, item.worse)]
    prompts = embed([item.prompt for item in items for _ in (0, 1)])
    base = model.reward(prompts, embed(texts))[0]
    edited = model.reward(prompts, embed([bake(t, {attribute}) for t in texts]))[0]
    return float((edited - base).mean() / (base.std() or 1.0))


def population_amce(items: list[Item], attributes: list[str], world: World, group: str | None,
                    draws: int, rng: np.random.Generator, probability: float = 0.5) -> dict[str, float]:
    """Each attribute's AMCE in the population the design samples from: served pairs drawn as
    ``randomised_attributes`` draws them (a random prompt, random display order, every
    attribute on each side with ``probability``), the outcome the simulator's exact
    ``P(left) + P(tie) / 2``, averaged over ``draws`` redraws; the estimand an estimator's 95% CI
    should cover in 95% of collections (a truth computed apart from any collected label).

    The estimand is the effect among responses the attribute applies to (``Editor.fits``): a
    side it does not apply to shows it off whatever the coin, and an attribute's AMCE is taken
    over the draws where it applies to both sides, as the estimator takes it."""
    from acquisition.editors import get_editor
    from collector.jobs.simulate import choice_probabilities

    n, a = len(items), len(attributes)
    # fits[i, 0 / 1, j]: attribute j applies to item i's better / worse response
    fits = np.array([[[get_editor(name).fits(text, item.prompt) for name in attributes]
                      for text in (item.better, item.worse)] for item in items], dtype=bool).reshape(n, 2, a)
    pick = rng.integers(n, size=draws)
    swap = rng.random(draws) < 0.5
    on = rng.random((draws, 2, a)) < probability
    y = np.empty(draws)
    for k in range(draws):
        item = items[pick[k]]
        q = (item.quality_worse, item.quality_better) if swap[k] else (item.quality_better, item.quality_worse)
        shown = fits[pick[k], ::-1] if swap[k] else fits[pick[k]]  # (left, right) x attribute
        on[k] &= shown
        sides = [{attributes[j] for j in range(a) if on[k, s, j]} for s in (0, 1)]
        p_l, _, p_t = choice_probabilities(q[0], q[1], sides[0], sides[1], world.annotators, group)
        y[k] = p_l + p_t / 2
    out = {}
    both: np.ndarray = np.asarray(fits[pick].all(axis=1))  # `(draws, a)`: the attribute applies to both responses of the draw
    for j, name in enumerate(attributes):
        keep = both[:, j]
        t = np.concatenate([on[keep, 0, j], on[keep, 1, j]])
        yy = np.concatenate([y[keep], 1 - y[keep]])
        out[name] = float(yy[t].mean() - yy[~t].mean()) if t.any() and (~t).any() else float("nan")
    return out


def naive_amce(collection: Collection, attribute: str) -> tuple[float, float]:
    """The observational negative control: the attribute's "effect" read off texts where it
    sits where it naturally does (correlated with quality), estimated as if it were randomised."""
    pairs = labelled_pairs(pairs_frame(collection.store))
    baked = collection.baked
    pairs[f"left_{attribute}"] = pd.array([attribute in baked.get(int(r), set()) for r in pairs.left_base_response_id],
                                          dtype="boolean")
    pairs[f"right_{attribute}"] = pd.array([attribute in baked.get(int(r), set()) for r in pairs.right_base_response_id],
                                           dtype="boolean")
    row = amce(pairs, attributes=[attribute]).iloc[0]
    return float(row.estimate), float(row.se)


def objective_amce_rows(collection: Collection, world: World) -> pd.DataFrame:
    """Each randomised attribute's AMCE within each shown objective, beside the truth on the
    same realised design and the nominal effect under that objective."""
    pairs = labelled_pairs(pairs_frame(collection.store))
    attrs = list(world.arms.randomised)
    estimate = amce(pairs, attributes=attrs, by=["objective"])
    truth = amce(pairs.assign(true_left=true_left_outcome(collection.store, pairs, world.annotators, collection.baked)),
                 attributes=attrs, by=["objective"], left_outcome="true_left")
    merged = estimate.merge(truth[["objective", "attribute", "estimate"]].rename(columns={"estimate": "true_amce"}),
                            on=["objective", "attribute"])
    merged["covered"] = (merged.ci_low <= merged.true_amce) & (merged.true_amce <= merged.ci_high)
    merged["nominal_effect"] = [world.annotators.effect(a, None, o) for a, o in zip(merged.attribute, merged.objective)]
    return merged.assign(arm=collection.arm, seed=collection.seed)


def amce_rows(collection: Collection, world: World) -> pd.DataFrame:
    """Each randomised attribute's estimated AMCE with its 95% CI, beside the true AMCE on the
    same realised design (from the simulator's exact choice probabilities)."""
    pairs = labelled_pairs(pairs_frame(collection.store))
    attrs = list(world.arms.randomised)
    estimate = amce(pairs, attributes=attrs)
    truth = amce(pairs.assign(true_left=true_left_outcome(collection.store, pairs, world.annotators, collection.baked)),
                 attributes=attrs, left_outcome="true_left")
    merged = estimate.merge(truth[["attribute", "estimate"]].rename(columns={"estimate": "true_amce"}), on="attribute")
    merged["covered"] = (merged.ci_low <= merged.true_amce) & (merged.true_amce <= merged.ci_high)
    merged["nominal_effect"] = [world.annotators.effect(a) for a in merged.attribute]
    return merged.assign(arm=collection.arm, seed=collection.seed)
