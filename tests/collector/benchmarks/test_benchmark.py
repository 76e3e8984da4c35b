"""The causal benchmark: world files validate with field-naming errors, the simulator counts
attributes written into the texts, and a small run shows the direction of the effects."""

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest

from acquisition.core.config import from_dict, loads_toml
from acquisition.core.errors import ConfigError
from collector.benchmarks.causal import configure, run_causal
from collector.benchmarks.causal.engine import bake, build_pool, place
from collector.benchmarks.causal.experiments import labels_to_target
from collector.benchmarks.causal.sources import synthetic_items
from collector.benchmarks.causal.world import WORLDS_DIR, World, load_world
from collector.jobs.simulate import SimulatedAnnotatorConfig, quality_gap_for_flip_rate, simulate
from collector.store import Store
from models.embeddings import BagOfWordsEmbedder

pytestmark = pytest.mark.slow  # a real (small) benchmark run


@pytest.mark.parametrize("path", sorted(WORLDS_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_built_in_worlds_validate(path):
    world = load_world(path)
    assert world.models and (world.policies or world.amce_check.seeds or world.sweeps.rho_assignment
                            or world.sweeps.rho_latent or world.active_protocol.seeds)  # something to run


@pytest.mark.parametrize("text, where", [
    ("[confounding]\nrho_spurious = 1.5", "w.toml.confounding.rho_spurious"),
    ("[confounding]\nspurious = ['sparkles']", "w.toml.confounding.spurious[0]"),
    ("labels = 'many'", "w.toml.labels"),
    ("[arms]\nrandomised = ['emoji']", "w.toml.arms.randomised"),
    ("policies = ['observational', 'magic']", "w.toml.policies[1]"),
    ("[source]\nkind = 'file'", "w.toml.source.path"),
    ("[annotators]\nnoise = -1", "w.toml.annotators.noise"),
    ("colour = 'blue'", "unknown key 'colour'"),
])
def test_world_errors_name_the_field(text, where):
    with pytest.raises(ConfigError, match=re.escape(where)):
        from_dict(World, loads_toml(text), "w.toml")


def test_placement_puts_spurious_attribute_on_the_better_response_at_rho():
    world = configure(None, embedder="bag_of_words", sweeps=False)
    items = synthetic_items(400, seed=1)
    natural = place(items, world, np.random.default_rng(0))
    flipped = place(items, world, np.random.default_rng(0), flipped=True)
    share = np.mean(["verbosity" in on for on in natural.on_better])
    assert 0.85 < share < 0.95
    assert np.mean(["verbosity" in on for on in flipped.on_better]) < 0.15
    pool = build_pool(items[:5], natural)
    for record, b, w in zip(pool.records, natural.on_better, natural.on_worse):
        texts = [r["text"] for r in record["responses"]]
        assert pool.baked[texts[0]] == b and pool.baked[texts[1]] == w
    assert bake(items[0].better, {"verbosity"}) == bake(items[0].better, {"verbosity"})  # deterministic


def test_simulator_counts_attributes_written_into_the_text():
    store = Store(":memory:")
    store.add_pool([{"prompt": "p", "responses": [{"text": "a", "quality": 0.0}, {"text": "b", "quality": 0.0}]}], "t")
    store.activate_policy("observational", {})
    a_id = next(rid for rid, t in store.pool_snapshot().response_text.items() if t == "a")
    config = SimulatedAnnotatorConfig(attribute_effects={"emoji": 3.0}, tie_strength=0.0,
                                      objectives={"fans": "likes emoji"})
    simulate(store, labels=300, annotators=2, groups=["fans"], seed=0, config=config, base_attributes={a_id: {"emoji"}})
    chose_a = 0
    for label in store.labels():
        pair = store.served_pair(label["served_pair_id"])
        side = "left" if pair["left_base_response_id"] == a_id else "right"
        chose_a += label["choice"] == side
    assert chose_a / 300 > 0.9  # sigmoid(3) = 0.95
    assert {a["objective"] for a in store.annotators()} == {"likes emoji"}
    assert quality_gap_for_flip_rate(0.1) == pytest.approx(np.log(9))


def test_labels_to_target_interpolates_mean_curves():
    curves = [{"policy": p, "seed": s, "labels": n, "ood_accuracy": a}
              for s in (0, 1)
              for p, pts in (("randomised_attributes", [(100, 0.6), (200, 0.7), (400, 0.8)]),
                             ("active_mixture", [(100, 0.7), (200, 0.9), (400, 0.9)]),
                             ("observational", [(100, 0.5), (200, 0.5), (400, 0.6)]))
              for n, a in pts]
    assert labels_to_target(curves, "active_mixture")["labels"] == 150
    assert labels_to_target(curves, "active_mixture")["share"] == 0.375
    assert labels_to_target(curves, "observational")["labels"] is None


def test_small_run_shows_the_direction_of_the_effects(tmp_path, capsys):
    """Observational data confounded in its texts: OOD well below ID; randomising the attribute
    keeps OOD near the oracle; AMCE intervals cover the true (zero) effects."""
    world = configure(None, seeds=2, labels=300, quick_run=True, embedder="bag_of_words", sweeps=False)
    world = dataclasses.replace(world, policies=["observational", "randomised_attributes"], curve=[150, 300],
                                source=dataclasses.replace(world.source, train=300, test=300))
    results = run_causal(world, tmp_path / "out", workdir=tmp_path / "work")
    printed = capsys.readouterr().out
    assert printed.startswith("SMOKE TEST (--quick)") and "12.7 standard errors" in printed
    assert "Precondition (the task is learnable): randomised_attributes clean accuracy" in printed
    headline = json.loads(printed.strip().splitlines()[-1])
    assert set(headline) == {"observational", "randomised_attributes"}
    figures = {"id_accuracy", "ood_accuracy", "oracle_ood_accuracy", "clean_accuracy", "mirrored_ood_accuracy"}
    for v in headline.values():
        assert set(v) >= figures | {"ci95", "n_seeds"} and v["n_seeds"] == 2
        assert set(v["ci95"]) == figures | {"held_out_mirrored_accuracy", "unrandomised_mirrored_accuracy"}
        for figure in figures:
            low, high = v["ci95"][figure]
            assert low <= v[figure] <= high
    # each seed draws its own train/test split
    from collector.benchmarks.causal.experiments import load_items
    tests = [{item.prompt for item in load_items(world, seed)[1]} for seed in (0, 1)]
    assert len(tests[0]) == len(tests[1]) == 300 and tests[0] != tests[1]
    obs, rnd = headline["observational"], headline["randomised_attributes"]
    assert obs["id_accuracy"] - obs["ood_accuracy"] > 0.08, headline
    # the figure that can fail: on mirrored sets a spurious detector scores 0.5, not 0
    assert rnd["mirrored_ood_accuracy"] > obs["mirrored_ood_accuracy"], headline
    assert 0 < rnd["held_out_mirrored_accuracy"] < 1  # padding no editor writes, scored the same way
    assert abs(rnd["ood_accuracy"] - rnd["oracle_ood_accuracy"]) < 0.06, headline
    assert rnd["ood_accuracy"] - obs["ood_accuracy"] > 0.05, headline
    effects = [r for r in results["amce"] if r["arm"] == "randomised_attributes"]
    assert {r["attribute"] for r in effects} == set(world.arms.randomised)
    assert np.mean([r["covered"] for r in effects]) >= 0.6
    assert (tmp_path / "out" / "benchmark-synthetic.json").exists()
    assert (tmp_path / "out" / "benchmark-synthetic.html").exists()
    assert {r["labels"] for r in results["curves"] if r["policy"] == "randomised_attributes"} == {150, 300}


def test_bag_of_words_stand_in_is_deterministic_and_normalised():
    e = BagOfWordsEmbedder()
    v = e.embed(["Great question. - a list", "other text"])
    assert v.shape == (2, 256) and np.allclose(np.linalg.norm(v, axis=1), 1.0)
    assert np.array_equal(v[0], BagOfWordsEmbedder().embed(["Great question. - a list"])[0])


def test_the_objective_world_recovers_objective_dependent_effects(tmp_path, capsys):
    world = configure("objectives", seeds=2, labels=800, embedder="bag_of_words", sweeps=False)
    results = run_causal(world, tmp_path / "out", workdir=tmp_path / "work")
    rows = pd.DataFrame(results["objective_amce"])
    assert set(rows.objective) == set(world.objective.objectives) and set(rows.seed) == {0, 1}
    helpful, harmless = world.objective.objectives
    mean = rows.groupby(["objective", "attribute"]).estimate.mean()
    assert mean[(helpful, "verbosity")] > mean[(harmless, "verbosity")] + 0.05
    assert mean[(harmless, "hedging")] > mean[(helpful, "hedging")] + 0.05
    assert rows.covered.mean() >= 0.7, rows[["objective", "attribute", "estimate", "true_amce", "covered"]]
    assert "The objective as an intervention" in capsys.readouterr().out


def test_the_amce_check_can_fail_and_its_negative_control_does(tmp_path, capsys):
    """Against the population AMCE (computed apart from the labels), randomised estimates cover
    about 95% of the time with z of SD about 1; the naive observational estimate of a spurious
    attribute sitting on the better response misses."""
    world = configure("amce_check")
    world = dataclasses.replace(world, amce_check=dataclasses.replace(world.amce_check, seeds=4, labels=600,
                                                                      draws=20_000))
    results = run_causal(world, tmp_path / "out", workdir=tmp_path / "work")
    rows = pd.DataFrame(results["amce_check"])
    randomised, naive = rows[rows.kind == "randomised"], rows[rows.kind == "naive observational"]
    assert len(randomised) == 4 * 5 * 2 and len(naive) == 4
    # the truth is not the estimator on the same rows: it differs from every estimate
    assert (randomised.estimate != randomised.population_amce).all()
    assert randomised.covered.mean() >= 0.8 and 0.5 < randomised.z.std() < 1.6
    truth = randomised.groupby(["group", "attribute"]).population_amce.first()
    assert truth[("second", "emoji")] > truth[("first", "emoji")] + 0.04  # group-specific effects
    assert not naive.covered.any() and (naive.z > 5).all()
    assert "negative control" in capsys.readouterr().out


def test_table2_reports_every_cell_and_paired_differences(tmp_path, capsys):
    world = configure("table2", seeds=2, labels=400, embedder="bag_of_words")
    world = dataclasses.replace(world, sweeps=dataclasses.replace(world.sweeps, rho_assignment=[0.5, 0.99],
                                                                  models=["bt_mlp_conditioned", "multihead"]))
    results = run_causal(world, tmp_path / "out", workdir=tmp_path / "work")
    rows = pd.DataFrame(results["sweeps"])
    cells = {c for c in rows.columns if c.startswith("cell ")}
    assert cells == {"cell c=everyday x everyday", "cell c=everyday x technical",
                     "cell c=technical x technical", "cell c=technical x everyday"}
    assert set(rows.policy) == {"observational", "assignment_randomisation"} and set(rows.seed) == {0, 1}
    printed = capsys.readouterr().out
    assert "Sweep rho_assignment_paired:" in printed and "inconsistent - randomised (paired)" in printed


def test_an_attribute_no_arm_randomises_gets_its_own_mirrored_sets(tmp_path):
    world = configure(None, seeds=2, labels=300, quick_run=True, embedder="bag_of_words", sweeps=False)
    world = dataclasses.replace(world, policies=["observational", "randomised_attributes"], curve=[300],
                                confounding=dataclasses.replace(world.confounding, unrandomised=["bold"]))
    world.validate("test")
    results = run_causal(world, tmp_path / "out", workdir=tmp_path / "work")
    for policy, figures in results["headline"].items():
        assert 0 < figures["unrandomised_mirrored_accuracy"] < 1, policy
    bad = dataclasses.replace(world, confounding=dataclasses.replace(world.confounding, unrandomised=["verbosity"]))
    with pytest.raises(Exception, match="unrandomised"):
        bad.validate("w")


def test_table1_reports_paired_differences_over_split_seeds(tmp_path, capsys):
    world = configure("table1", seeds=2, labels=300, embedder="bag_of_words")
    world = dataclasses.replace(world, sweeps=dataclasses.replace(world.sweeps, rho_latent=[0.0, 0.9]))
    results = run_causal(world, tmp_path / "out", workdir=tmp_path / "work")
    rows = pd.DataFrame(results["sweeps"])
    assert set(rows.policy) == {"observational", "randomised_attributes"} and set(rows.seed) == {0, 1}
    for column in ("decorrelated_accuracy", "mirrored_accuracy", "id_accuracy", "ood_accuracy"):
        assert rows[column].between(0, 1).all(), column
    # both arms are measured at every rho: the randomised arm collects from that rho's natural pool
    # (the factor already written in) and is fitted again, so its column is not a constant
    rnd = rows[rows.policy == "randomised_attributes"]
    assert rnd.groupby("rho").ood_accuracy.mean().nunique() == 2 or rnd.groupby("rho").id_accuracy.mean().nunique() == 2
    # seeds draw their own splits, so the randomised model differs between seeds
    assert rnd.groupby("seed").ood_accuracy.first().nunique() == 2
    printed = capsys.readouterr().out
    assert "Sweep rho_latent_paired:" in printed and "randomised - observational (paired)" in printed
    # rho_latent = 0 is the negative control beside the Table 1 headline
    assert "Table 1: randomised - observational at rho_latent = 0.9" in printed and "rho_latent = 0.0 (covers 0)" in printed


def test_labels_needed_reads_the_monotone_curve_in_log_budget():
    from collector.benchmarks.causal.active_protocol import bootstrap_median, labels_needed

    budgets = [50, 100, 200, 400]
    assert labels_needed(budgets, [0.6, 0.7, 0.8, 0.9], 0.75) == pytest.approx(np.sqrt(100 * 200))
    assert labels_needed(budgets, [0.6, 0.8, 0.7, 0.9], 0.75) == pytest.approx(100 * (200 / 100) ** ((0.75 - 0.75) / 0.05))
    assert labels_needed(budgets, [0.6, 0.7, 0.8, 0.9], 0.95) == float("inf")
    assert labels_needed(budgets, [0.9, 0.7, 0.8, 0.9], 0.5) == 50
    median, low, high = bootstrap_median([0.4, 0.5, float("inf")])
    assert median == 0.5 and low == 0.4 and high == float("inf")


def test_active_protocol_is_paired_keeps_its_floor_and_reports_ratios(tmp_path, capsys):
    world = configure("active_protocol", quick_run=True, embedder="bag_of_words")
    assert world.active_protocol.seeds == 2 and world.smoke
    results = run_causal(world, tmp_path / "out", workdir=tmp_path / "work")
    protocol = results["active_protocol"]
    runs = pd.DataFrame(protocol["runs"])
    assert set(runs.strategy) == {"random", "diversity", "bald", "bald_diversity"}
    for seed, g in runs.groupby("seed"):  # the same first batch and fit: identical at the first budget
        assert g.curve.map(lambda c: c["50"] if "50" in c else c[50]).nunique() == 1, seed
    n = protocol["pool_pairs"]
    assert (runs.min_draw_probability >= 0.1 / n - 1e-15).all()
    assert protocol["pool_pairs"] >= 20 * 200
    summary = {s["strategy"]: s for s in protocol["summary"]}
    assert summary["random"]["ratio_median"] <= 1.0  # random reaches its own fitted accuracy by the reference
    assert "label ratio, median [95% bootstrap CI]" in capsys.readouterr().out


def test_the_clean_pool_shortcut_shows_a_gain_that_the_one_pool_design_does_not(tmp_path, capsys):
    """Padding planted as text the editors cannot read (natural length, as they see it), on the
    better response 90% of the time. The old design, randomising from a pool with nothing
    written in, shows a gain on the held-out padding sets; collecting from the one natural pool,
    as the product would, the arm cannot take that padding out and shows none. At rho = 0.5 the
    same arm against observational is the control, and must show nothing either."""
    world = configure(None, seeds=3, labels=300, quick_run=True, embedder="bag_of_words", sweeps=False)
    world = dataclasses.replace(world, policies=["observational", "randomised_attributes"], curve=[300],
                                source=dataclasses.replace(world.source, train=300, test=300),
                                arms=dataclasses.replace(world.arms, clean_upper_bound=True),
                                confounding=dataclasses.replace(world.confounding, planted="held_out"))
    results = run_causal(world, tmp_path / "out", workdir=tmp_path / "work")
    main = pd.DataFrame(results["main"]).set_index(["policy", "seed"])["held_out_mirrored_accuracy"]

    def gain(label, reference="observational"):
        return np.array([main[(label, s)] - main[(reference, s)] for s in range(3)])

    clean = gain("randomised_attributes [clean pool: upper bound]")
    one_pool = gain("randomised_attributes")
    control = gain("randomised_attributes [rho=0.5 control]", "oracle")
    assert clean.mean() > 0.03 and (clean > 0).all(), clean  # the shortcut: a gain from texts without the confound
    assert abs(one_pool.mean()) < 0.02, one_pool  # what the product would get: nothing
    assert abs(control.mean()) < 0.02, control
    printed = capsys.readouterr().out
    assert "upper bound: randomised_attributes on a clean pool" in printed and "held-out padding mirrored" in printed


def test_conditioning_world_learns_the_group_effect_and_its_control_runs(tmp_path, capsys):
    """Groups judge padding in opposite ways under randomised assignment: a model that sees c
    (one-hot x response) beats bt_mlp, paired by seed; where the groups agree it gains nothing."""
    world = configure("conditioning", seeds=3, labels=800, embedder="bag_of_words")
    world = dataclasses.replace(world, source=dataclasses.replace(world.source, train=400, test=300),
                                sweeps=dataclasses.replace(world.sweeps, models=["bt_mlp", "bt_mlp_conditioned"]))
    results = run_causal(world, tmp_path / "out", workdir=tmp_path / "work")
    rows = pd.DataFrame(results["sweeps"])

    def gain(policy):
        g = rows[rows.policy == policy].set_index(["model", "seed"])
        return np.array([(g.loc[("bt_mlp_conditioned", s)].inconsistent_accuracy
                          + g.loc[("bt_mlp_conditioned", s)].consistent_accuracy
                          - g.loc[("bt_mlp", s)].inconsistent_accuracy - g.loc[("bt_mlp", s)].consistent_accuracy) / 2
                         for s in range(3)])

    learnt = gain("assignment_randomisation")
    assert learnt.mean() > 0.02 and (learnt > 0).all(), learnt
    assert abs(gain("assignment_randomisation [groups agree: control]").mean()) < 0.02
    printed = capsys.readouterr().out
    assert "conditioning: bt_mlp_conditioned - bt_mlp under randomised assignment" in printed


def test_active_protocol_through_the_serving_path_never_serves_a_pair_twice(tmp_path, capsys):
    world = configure("active_served", quick_run=True, embedder="bag_of_words")
    results = run_causal(world, tmp_path / "out", workdir=tmp_path / "work")
    protocol = results["active_protocol"]
    assert protocol["path"] == "serving path"
    runs = pd.DataFrame(protocol["runs"])
    assert set(runs.strategy) == {"random", "bald"} and (runs.served_twice == 0).all() and runs.floor_kept.all()
    assert protocol["noise_control"]["summary"] and {s["strategy"] for s in protocol["noise_control"]["summary"]} == \
        {"random", "bald"}
    printed = capsys.readouterr().out
    assert "Negative control: the same protocol on a pool of pure label noise" in printed
    assert "active protocol (serving path): bald label ratio" in printed


def test_a_planted_attribute_that_an_edit_takes_off_no_longer_counts_for_the_truth():
    from collector.jobs.simulate import _on

    off = json.dumps({"verbosity": {"on": False, "editor": "verbosity", "seed": 1, "applies": True, "realised": False}})
    on = json.dumps({"verbosity": {"on": True, "editor": "verbosity", "seed": 1, "applies": True, "realised": True}})
    n_a = json.dumps({"list_format": {"on": True, "editor": "list_format", "seed": 1, "applies": False,
                                      "realised": None}})
    assert _on(off, {"verbosity", "bold"}) == {"bold"}  # the two-way editor took the padding out
    assert _on(on, set()) == {"verbosity"}
    assert _on(n_a, {"list_format"}) == {"list_format"}  # did not apply: the text is as it was


def test_a_confounded_attribute_must_be_one_the_arms_can_take_out():
    world = configure(None, embedder="bag_of_words", sweeps=False)
    bad = dataclasses.replace(world, confounding=dataclasses.replace(world.confounding, spurious=["drop_answer"]),
                              arms=dataclasses.replace(world.arms, randomised=["drop_answer"]))
    with pytest.raises(ConfigError, match="cannot take it out"):
        bad.validate("w.toml")
