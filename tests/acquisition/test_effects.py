import json

import numpy as np
import pandas as pd
import pytest

from acquisition.core.config import to_dict
from acquisition.editors import realised_flag
from acquisition.effects import amce, amce_one, labelled_pairs
from acquisition.policies import RandomisedAttributesConfig
from collector.io.frames import pairs_frame
from collector.jobs.simulate import SimulatedAnnotatorConfig, choice_probabilities, simulate


def _true_left(store, pairs: pd.DataFrame, config: SimulatedAnnotatorConfig) -> pd.Series:
    """P(left) + P(tie)/2 of the simulated annotator for each served pair: the outcome whose
    AMCE on the realised design is the true effect."""
    out = []
    for r in pairs.itertuples():
        q = [store.response(getattr(r, f"{s}_base_response_id"))["quality"] for s in ("left", "right")]
        on = [{a for a, e in json.loads(getattr(r, f"{s}_edit_vector")).items() if realised_flag(e)}
              for s in ("left", "right")]  # what the annotator was shown: the treatment received
        objective = getattr(r, "objective", None)
        p_l, _, p_t = choice_probabilities(q[0], q[1], on[0], on[1], config, r.annotator_group,
                                           objective if isinstance(objective, str) else None)
        out.append(p_l + p_t / 2)
    return pd.Series(out, index=pairs.index)


def test_amce_one_matches_difference_in_means_and_its_se():
    rng = np.random.default_rng(0)
    n = 4000
    on_l, on_r = rng.random(n) < 0.5, rng.random(n) < 0.5
    y = (rng.random(n) < 0.5 + 0.1 * (on_l.astype(float) - on_r)).astype(float)
    est, se, n_on, n_off = amce_one(y, on_l, on_r, np.ones(n))
    t = np.concatenate([on_l, on_r])
    yy = np.concatenate([y, 1 - y])
    assert est == pytest.approx(yy[t].mean() - yy[~t].mean())
    assert n_on + n_off == 2 * n
    # truth: P(chosen | on) - P(chosen | off) = 0.1 here; 5 SEs is a generous band
    assert abs(est - 0.1) < 5 * se and 0.005 < se < 0.03


@pytest.mark.slow
def test_group_effect_shows_for_that_group_only_with_cis_covering_truth(store):
    config = SimulatedAnnotatorConfig(group_effects={"fans": {"emoji": 1.5}})
    store.activate_policy("randomised_attributes", {"attributes": ["list_format", "bold", "emoji"]})  # emoji: not a default
    simulate(store, labels=1500, annotators=6, groups=["fans", "neutral"], seed=3, config=config)
    pairs = labelled_pairs(pairs_frame(store))
    table = amce(pairs, by=["annotator_group"])
    emoji = table[table.attribute == "emoji"].set_index("annotator_group")
    assert emoji.loc["fans", "ci_low"] > 0.03 and emoji.loc["fans", "estimate"] > 0.08  # a clear effect
    assert emoji.loc["neutral", "ci_low"] < 0 < emoji.loc["neutral", "ci_high"] or \
        abs(emoji.loc["neutral", "estimate"]) < 0.06
    pairs = pairs.assign(true_left=_true_left(store, pairs, config))
    truth = amce(pairs, by=["annotator_group"], left_outcome="true_left")
    merged = table.merge(truth, on=["annotator_group", "attribute"], suffixes=("", "_true"))
    covered = ((merged.ci_low <= merged.estimate_true) & (merged.estimate_true <= merged.ci_high)).mean()
    assert covered >= 0.8, merged[["annotator_group", "attribute", "estimate", "se", "estimate_true"]]
    assert set(table.method) == {"difference_in_means"}
    assert (table.n_labels > 50).all()  # the pairs where the attribute applies to both responses


def test_unequal_design_is_reweighted(store):
    store.activate_policy("randomised_attributes", to_dict(RandomisedAttributesConfig(
        attributes=["emoji", "closing_pleasantry"], probabilities={"emoji": 0.2})))
    config = SimulatedAnnotatorConfig(attribute_effects={"closing_pleasantry": 2.0})
    simulate(store, labels=1200, annotators=4, seed=5, config=config)
    pairs = pairs_frame(store)
    # the study's own design: coin flips depend on nothing observed, so every weight is 1
    table = amce(pairs).set_index("attribute")
    assert set(table.method) == {"difference_in_means"} and set(table.estimand) == {"design"}
    assert table.loc["closing_pleasantry", "ci_low"] > 0
    assert table.loc["emoji", "ci_low"] < 0 < table.loc["emoji", "ci_high"]
    # on request, the other attributes reweighted to equal arms
    uniform = amce(pairs, estimand="uniform").set_index("attribute")
    assert set(uniform.method) == {"ipw_hajek"} and set(uniform.estimand) == {"uniform"}
    assert uniform.loc["closing_pleasantry", "ci_low"] > 0


def test_observational_pairs_estimate_nothing(store):
    store.activate_policy("observational", {})
    simulate(store, labels=50, annotators=2, seed=1)
    assert amce(pairs_frame(store)).empty
    table = amce(pairs_frame(store), attributes=["emoji"])
    assert table.loc[0, "n_labels"] == 0 and table.loc[0, "method"] == "none"


@pytest.mark.parametrize("per", ["pair", "annotator"])
def test_a_randomised_objective_identifies_its_effect_on_choices(store, per):
    """The objective is the annotator's confounder C: randomised, each served pair records it
    with its probability, and the AMCE of an attribute whose true effect depends on the shown
    objective is recovered per objective, with CIs that cover the truth on the realised design."""
    from collector.serving.study import update_study_config

    helpful, harmless = "Judge which response is more helpful", "Judge which response is more harmless"
    update_study_config(store, {"randomise_objective": per, "objectives": [helpful, harmless],
                                "objective_probabilities": [0.6, 0.4]})
    store.activate_policy("randomised_attributes", to_dict(RandomisedAttributesConfig(
        attributes=["closing_pleasantry", "hedging"])))
    config = SimulatedAnnotatorConfig(objective_effects={helpful: {"closing_pleasantry": 1.5}, harmless: {"hedging": 1.5}})
    simulate(store, labels=1200, annotators=40, seed=7, config=config)
    served = pairs_frame(store)
    assert set(served.objective) == {helpful, harmless}
    p = {helpful: 0.6, harmless: 0.4}
    assert (served.objective_propensity == served.objective.map(p)).all()
    assert served.groupby("objective").objective_propensity.first().sum() == pytest.approx(1.0)
    if per == "annotator":  # one draw per annotator, the same on every pair they see
        assert (served.groupby("annotator_id").objective.nunique() == 1).all()
    share = (served.objective == helpful).mean()
    assert 0.45 < share < 0.75
    pairs = labelled_pairs(served)
    table = amce(pairs, by=["objective"]).set_index(["objective", "attribute"])
    assert table.loc[(helpful, "closing_pleasantry"), "ci_low"] > 0.05 and table.loc[(harmless, "hedging"), "ci_low"] > 0.05
    assert table.loc[(helpful, "hedging"), "ci_low"] < 0.05 and table.loc[(harmless, "closing_pleasantry"), "ci_low"] < 0.05
    pairs = pairs.assign(true_left=_true_left(store, pairs, config))
    truth = amce(pairs, by=["objective"], left_outcome="true_left").set_index(["objective", "attribute"])
    covered = ((table.ci_low <= truth.estimate) & (truth.estimate <= table.ci_high)).mean()
    assert covered >= 0.75, table.join(truth, rsuffix="_true")[["estimate", "ci_low", "ci_high", "estimate_true"]]


def test_a_failed_edit_counts_as_off_and_intention_to_treat_is_kept():
    """A fixture where 40% of the edits switched on fail (the served text does not show the
    attribute) and people choose by what they see: the realised AMCE recovers the effect of the
    attribute, the intention-to-treat AMCE of the assignment is diluted by the failures."""
    rng = np.random.default_rng(0)
    n = 4000
    assigned = rng.random((n, 2)) < 0.5
    realised = assigned & (rng.random((n, 2)) >= 0.4)
    p_left = np.where(realised[:, 0] == realised[:, 1], 0.5, np.where(realised[:, 0], 0.8, 0.2))
    frame = pd.DataFrame({
        "label": np.where(rng.random(n) < p_left, "left", "right"), "arm_propensity": 0.25,
        "policy": "randomised_attributes", "policy_version": 1,
        "left_bold": realised[:, 0], "right_bold": realised[:, 1],
        "left_bold_assigned": assigned[:, 0], "right_bold_assigned": assigned[:, 1],
    })
    realised_amce = amce(frame, attributes=["bold"]).iloc[0]
    itt = amce(frame, attributes=["bold"], treatment="assigned").iloc[0]
    truth = frame.assign(true_left=p_left)
    realised_truth = amce(truth, attributes=["bold"], left_outcome="true_left").iloc[0].estimate
    itt_truth = amce(truth, attributes=["bold"], left_outcome="true_left", treatment="assigned").iloc[0].estimate
    assert realised_amce.ci_low <= realised_truth <= realised_amce.ci_high
    assert itt.ci_low <= itt_truth <= itt.ci_high
    assert itt_truth < realised_truth - 0.1 and itt.estimate < realised_amce.estimate - 0.05
    assert realised_amce.n_on < itt.n_on  # failed edits counted as off
