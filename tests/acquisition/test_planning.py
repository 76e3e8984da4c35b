"""The planner's labels for 80% power, checked by simulating studies of that size: the share of
them whose 95% CI excludes 0 is 75-85%. The clustering it plans for comes from a pilot's own
effects table, as it would from a study so far."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from acquisition.effects import amce
from acquisition.planning import Design, detectable_effect, icc_from_effects, labels_needed, unit_sd

ANNOTATORS, EFFECT, SPREAD = 20, 0.10, 0.08


def study(rng: np.random.Generator, n: int, annotators: int = ANNOTATORS, beta: float = EFFECT) -> pd.DataFrame:
    """``n`` labels by ``annotators`` people drawn afresh, each with their own effect (sd
    ``SPREAD``): attribute ``a`` on each side by a coin flip, 10% ties, 5% skipped (labelled, but
    not entering)."""
    annotator = np.arange(n) % annotators  # an equal share each
    own = beta + rng.normal(0, SPREAD, annotators)[annotator]  # a new sample of annotators each study
    on_l, on_r = rng.random(n) < 0.5, rng.random(n) < 0.5
    p_left = np.clip(0.5 + own * (on_l.astype(float) - on_r), 0, 1)
    label = np.where(rng.random(n) < p_left, "left", "right")
    label = np.where(rng.random(n) < 0.1, "tie", label)
    label = np.where(rng.random(n) < 0.05, None, label)  # skipped: not in the estimate
    return pd.DataFrame({"label": label, "left_a": on_l, "right_a": on_r, "annotator_id": annotator,
                         "left_edit_vector": '{"a": {}}', "right_edit_vector": '{"a": {}}'})


def test_the_planned_size_has_the_planned_power_by_simulation():
    rng = np.random.default_rng(5)
    # the study so far: 6,000 labels by 120 annotators (an ICC read from 20 clusters is too noisy)
    pilot = amce(study(rng, 6000, annotators=120), attributes=["a"]).iloc[0]
    icc = icc_from_effects(pilot["se"], pilot["se_annotator"], pilot["n_labels"] / 120)
    assert icc > 0  # annotators differ: the planner must pay for it
    design = Design(p_on=0.5, tie_rate=0.1, drop_rate=0.05, icc=icc)
    n = labels_needed(EFFECT, design, power=0.8, annotators=ANNOTATORS)
    naive = labels_needed(EFFECT, Design(p_on=0.5, tie_rate=0.1, drop_rate=0.05), power=0.8)
    assert n > naive  # clustering costs labels
    hits = 0
    replications = 400
    for _ in range(replications):
        row = amce(study(rng, n), attributes=["a"]).iloc[0]
        hits += row["ci_low"] > 0 or row["ci_high"] < 0
    assert 0.75 <= hits / replications <= 0.85, (n, naive, icc, hits / replications)


def test_both_ways_round_and_the_inputs_move_the_answer():
    design = Design()
    n = labels_needed(0.1, design)
    assert detectable_effect(n, design) == pytest.approx(0.1, rel=0.01)
    assert labels_needed(0.05, design) == pytest.approx(4 * n, rel=0.01)  # half the effect: four times the labels
    assert labels_needed(0.1, Design(p_on=0.2)) > n  # an attribute rarely on is harder to read
    assert labels_needed(0.1, Design(tie_rate=0.4)) < n  # a tie is half a choice: less variance per label
    assert labels_needed(0.1, Design(drop_rate=0.5)) == pytest.approx(2 * labels_needed(0.1, Design(drop_rate=0.0)),
                                                                      rel=0.01)
    assert labels_needed(0.1, Design(icc=0.02, labels_per_annotator=51)) == pytest.approx(2 * n, rel=0.01)
    assert labels_needed(0.1, Design(overlap=3, item_icc=0.5)) == pytest.approx(2 * n, rel=0.01)
    with pytest.raises(ValueError, match="add annotators"):
        labels_needed(0.02, Design(icc=0.2), annotators=3)
    with pytest.raises(ValueError, match="p_on"):
        labels_needed(0.1, Design(p_on=1.0))
    # sigma by hand where there are no ties: y in {0, 1}; each profile's outcome has variance 1/4
    assert unit_sd(0.5, 0.0) == pytest.approx(math.sqrt(0.5), rel=0.02)


def test_plan_reads_the_design_and_the_study_so_far_and_says_where_each_input_came_from(tmp_path, capsys):
    import json

    from collector.cli import main
    from collector.jobs.simulate import simulate
    from collector.store import Store
    from collector.store.create import init_db

    db = tmp_path / "d.db"
    init_db(db, demo=True)
    assert main(["plan", "--effect", "0.05", "--budget", "2000", "--db", str(db), "--json"]) == 0
    fresh = json.loads(capsys.readouterr().out)
    assert {r["p_on_source"] for r in fresh} == {"policy randomised_attributes"}
    assert fresh[0]["icc_source"].startswith("default 0")
    # before any label, where each editor applies is read from the pool: a list needs three sentences
    shares = {r["attribute"]: r["randomised_share"] for r in fresh}
    assert all(r["randomised_share_source"].startswith("the pool") for r in fresh)
    assert shares["list_format"] < shares["bold"] < 1
    store = Store(db)
    simulate(store, labels=900, annotators=30, seed=1)
    store.close()
    assert main(["plan", "--effect", "0.05", "--budget", "2000", "--db", str(db), "--json"]) == 0
    seen = json.loads(capsys.readouterr().out)
    listed = next(r for r in seen if r["attribute"] == "list_format")  # rarely applies: out of reach, said so
    assert listed["labels_needed"] is None and "add annotators" in listed["note"]
    assert seen[0]["icc_source"].startswith("the study so far") and seen[0]["tie_rate_source"] == "the study so far"
    row = seen[0]
    assert row["annotators"] == 30 and row["annotators_source"] == "the study so far"
    assert row["randomised_share_source"] == "the study so far" and 0 < row["randomised_share"] < 1
    design = Design(p_on=row["p_on"], tie_rate=row["tie_rate"], drop_rate=row["drop_rate"], icc=row["icc"],
                    randomised_share=row["randomised_share"])
    assert row["labels_needed"] == labels_needed(0.05, design, annotators=30)
    at_budget = Design(**{**design.__dict__, "labels_per_annotator": 2000 / 30})
    assert row["detectable_effect"] == pytest.approx(detectable_effect(2000, at_budget))
    assert main(["plan", "--effect", "0.05", "--icc", "0.02", "--annotators", "40", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "labels_needed" in text and "ICC (stated)" in text
