"""The dashboard's data loading, tables and figures (pure functions; the page is in test_dashboard_page.py)."""

import hashlib
from functools import partial

import numpy as np
import pandas as pd
import pytest

from acquisition.core.config import to_dict
from acquisition.effects import amce
from acquisition.policies import RandomisedAttributesConfig, load_policy_file
from collector.app import panels as dashboard
from collector.io.frames import pairs_frame
from collector.jobs.simulate import SimulatedAnnotatorConfig, choice_probabilities, simulate
from collector.serving.service import Collector
from collector.store import Store
from collector.store.create import init_db
from models.checkpoints import Checkpoints
from models.online import OnlineTrainer, TrainingConfig
from models.reward import ModelConfig


@pytest.fixture
def file_store(tmp_path):
    """A demo database on disk, so the dashboard reads it on its own read-only connection."""
    init_db(tmp_path / "d.db", demo=True)
    store = Store(tmp_path / "d.db")
    yield store
    store.close()


# ---------------------------------------------------------------------- agreement
def _labels(rows):
    """A minimal dashboard frame: (annotator, group, left response, right response, label)."""
    return pd.DataFrame([{
        "annotator_id": a, "annotator_group": g, "left_response_id": left, "right_response_id": r,
        "label": label, "qc_kind": "regular", "excluded": False,
    } for a, g, left, r, label in rows])


def test_agreement_panel_reads_regular_labels_position_free():
    pairs = _labels([
        (1, "g", 10, 11, "left"),   # chose response 10
        (2, "g", 11, 10, "right"),  # the same item shown swapped, also response 10
        (3, "g", 10, 11, "tie"),
        (4, "h", 20, 21, "both_bad"),
        (5, "h", 21, 20, "both_bad"),
    ])
    table = dashboard.agreement_summary(pairs).set_index("annotator_group")
    assert table.loc["g", "items"] == 1 and table.loc["g", "labels"] == 3
    assert table.loc["g", "pairwise_agreement"] == pytest.approx(1 / 3)
    assert table.loc["h", "krippendorff_alpha"] == 1.0 and table.loc["all", "items"] == 2
    fig = dashboard.build_agreement_figure(table.reset_index())
    assert {t.name for t in fig.data} == {"Krippendorff's alpha (nominal)", "pairwise agreement"}


def test_excluded_annotators_and_checks_leave_agreement():
    pairs = _labels([(1, "g", 10, 11, "left"), (2, "g", 10, 11, "right"), (3, "g", 10, 11, "left")])
    pairs.loc[1, "excluded"] = True
    pairs.loc[2, "qc_kind"] = "gold"
    assert dashboard.agreement_summary(pairs).set_index("annotator_group").loc["g", "items"] == 0


# ---------------------------------------------------------------------- loading
def test_load_pairs_agrees_with_pairs_frame(file_store):
    simulate(file_store, labels=120, annotators=4, groups=["a", "b"], seed=2)
    a, _ = file_store.add_annotator("skipper", group="b")
    collector = Collector(file_store, seed=0)
    collector.skip(a["id"], collector.next_pair(a["id"]).served_pair_id)
    collector.submit(a["id"], collector.next_pair(a["id"]).served_pair_id, "both_bad")
    collector.next_pair(a["id"])  # left open
    ours = dashboard.load_pairs(file_store.path)
    theirs = pairs_frame(file_store)
    assert len(ours) == len(theirs) == 123
    for column in ("served_pair_id", "status", "label", "annotator_id", "annotator_group", "task_type",
                   "left_response_id", "right_response_id", "policy", "policy_version", "arm_propensity",
                   "latency_ms", "qc_kind", "excluded"):
        left = ours[column].astype(object).where(ours[column].notna(), None).tolist()
        right = theirs[column].astype(object).where(theirs[column].notna(), None).tolist()
        assert left == right, column
    flags = [c for c in theirs.columns if c.startswith(("left_", "right_")) and c.split("_", 1)[1] in dashboard.ATTRIBUTES]
    assert ours[flags].astype(object).fillna(-1).equals(theirs[flags].astype(object).fillna(-1))
    assert (pd.to_datetime(theirs["labelled_at"], utc=True).dropna() - ours["labelled_at"].dropna()).abs().max() \
        < pd.Timedelta(milliseconds=1)
    # flags read separately, up to the last pair the log had, line up with it; later pairs get none
    base = dashboard.load_pairs(file_store.path, flags=False)
    upto = int(base["served_pair_id"].iloc[-2])
    joined = dashboard.with_flags(base, dashboard.load_flags(file_store.path, upto))
    assert joined.iloc[:-1].equals(ours.iloc[:-1])
    assert joined.iloc[-1][flags].isna().all() and ours.iloc[-1][flags].notna().any()
    # the in-memory path reads through the store's own connection and gives the same frame
    assert dashboard.load_pairs(file_store)[["served_pair_id", "label"]].equals(ours[["served_pair_id", "label"]])


def test_design_attributes_come_from_every_stored_config():
    mixture = {"components": [{"name": "randomised_attributes", "config": {"attributes": ["emoji"]}},
                              {"name": "counterfactual_pairs", "config": {"attributes": ["bold"]}}]}
    assert dashboard.design_attributes([mixture, {}]) == ["bold", "emoji"]
    default = dashboard.design_attributes([{"attributes": []}])
    assert "bold" in default and "verbosity" not in default and "drop_answer" not in default


def test_data_version_moves_with_labels(file_store):
    before = dashboard.data_version(file_store)
    simulate(file_store, labels=3, seed=1)
    assert dashboard.data_version(file_store) != before


# ---------------------------------------------------------------------- effects
def _true_left(store: Store, pairs: pd.DataFrame, config: SimulatedAnnotatorConfig, attributes) -> pd.Series:
    """P(left) + P(tie)/2 of the simulated annotator for each pair: the outcome whose AMCE on the
    realised design is the true effect (as in test_effects.py)."""
    out = []
    for r in pairs.itertuples():
        served = store.served_pair(r.served_pair_id)
        q = [store.response(served[f"{s}_base_response_id"])["quality"] for s in ("left", "right")]
        on = [{a for a in attributes if getattr(r, f"{s}_{a}") is not pd.NA and getattr(r, f"{s}_{a}")}
              for s in ("left", "right")]
        p_l, _, p_t = choice_probabilities(q[0], q[1], on[0], on[1], config, r.annotator_group)
        out.append(p_l + p_t / 2)
    return pd.Series(out, index=pairs.index)


@pytest.mark.slow
def test_effects_table_shows_a_group_effect_for_that_group_only_with_cis_covering_truth(file_store):
    config = SimulatedAnnotatorConfig(group_effects={"fans": {"emoji": 1.5}})
    file_store.activate_policy("randomised_attributes", {"attributes": ["list_format", "bold", "emoji"]})
    simulate(file_store, labels=1500, annotators=6, groups=["fans", "neutral"], seed=3, config=config)
    pairs = dashboard.load_pairs(file_store.path)
    table = dashboard.effects_table(pairs)
    assert set(table["scope"]) == {"overall", "annotator group", "prompt type"}
    groups = table[table["scope"] == "annotator group"]
    emoji = groups[groups["attribute"] == "emoji"].set_index("cell")
    assert emoji.loc["fans", "ci_low"] > 0.03 and emoji.loc["fans", "estimate"] > 0.08
    assert emoji.loc["neutral", "ci_low"] < 0 < emoji.loc["neutral", "ci_high"]
    others = groups[groups["attribute"] != "emoji"]
    assert (others["ci_low"] < 0.05).all()  # nothing else shows a clear positive effect
    attributes = sorted(groups["attribute"].unique())
    truth_pairs = pairs[pairs["label"].isin(["left", "right", "tie"])]
    truth_pairs = truth_pairs.assign(true_left=_true_left(file_store, truth_pairs, config, attributes))
    truth = amce(truth_pairs, attributes=attributes, by=["annotator_group"], left_outcome="true_left")
    merged = emoji.reset_index().merge(truth[truth.attribute == "emoji"], left_on="cell",
                                       right_on="annotator_group", suffixes=("", "_true"))
    assert ((merged.ci_low <= merged.estimate_true) & (merged.estimate_true <= merged.ci_high)).all()
    everything = groups.merge(truth, left_on=["cell", "attribute"], right_on=["annotator_group", "attribute"],
                              suffixes=("", "_true"))
    assert ((everything.ci_low <= everything.estimate_true) & (everything.estimate_true <= everything.ci_high)).mean() >= 0.8
    # a cell with no pair where the attribute applies to both responses estimates nothing, and says so
    empty = table["n_labels"] == 0
    assert set(table.loc[~empty, "method"]) == {"difference_in_means"} and set(table.loc[empty, "method"]) <= {"none"}
    assert (~empty).sum() > 0.8 * len(table)
    fig = dashboard.build_effects_figure(table)
    assert [a.text for a in fig.layout.annotations[:3]] == ["overall", "annotator group", "prompt type"]
    fans = next(t for t in fig.data if t.name.startswith("annotator group: fans (n="))
    n_fans = groups[groups["cell"] == "fans"]["n_labels"]
    assert [f"n={n:,}" for n in n_fans] == list(fans.text) and len(fans.x) == len(attributes)
    assert fans.name == f"annotator group: fans (n={n_fans.min():,})" if n_fans.nunique() == 1 else "-" in fans.name


def test_effects_figure_without_randomised_labels_says_so(file_store):
    file_store.activate_policy("observational", {})
    simulate(file_store, labels=10, seed=0)
    table = dashboard.effects_table(dashboard.load_pairs(file_store.path))
    assert table.empty
    assert "No randomised attribute" in dashboard.build_effects_figure(table).layout.annotations[0].text


# ---------------------------------------------------------------------- progress, overlap, balance
def test_progress_counts_rates_and_latency(file_store):
    a, _ = file_store.add_annotator("ada", group="experts")
    b, _ = file_store.add_annotator("bo", group="crowd")
    collector = Collector(file_store, seed=0)
    for choice in ("left", "both_bad", "right", "tie"):
        collector.submit(a["id"], collector.next_pair(a["id"]).served_pair_id, choice)
    collector.skip(b["id"], collector.next_pair(b["id"]).served_pair_id)
    collector.submit(b["id"], collector.next_pair(b["id"]).served_pair_id, "left")
    pairs = dashboard.load_pairs(file_store.path)
    summary = dashboard.progress_summary(pairs).set_index("annotator_group")
    assert summary.loc["all", "labels"] == 5 and summary.loc["all", "annotators"] == 2
    assert summary.loc["experts", "both_bad_rate"] == 0.25 and summary.loc["experts", "skip_rate"] == 0
    assert summary.loc["crowd", "skip_rate"] == 0.5
    fig = dashboard.build_progress_figure(pairs)
    cumulative = {t.name: list(t.y) for t in fig.data if t.type == "scatter" and t.mode == "lines"}
    assert cumulative["experts"][-1] == 4 and cumulative["crowd"][-1] == 1
    skipped = next(t for t in fig.data if t.name == "skipped")
    assert dict(zip(skipped.x, skipped.y)) == {"crowd": 0.5, "experts": 0.0}


def test_overlap_lists_every_combination_and_shows_empty_cells(file_store):
    file_store.activate_policy("randomised_attributes", to_dict(RandomisedAttributesConfig(attributes=["emoji", "bold"])))
    simulate(file_store, labels=60, annotators=2, groups=["a", "b"], seed=4)
    pairs = dashboard.load_pairs(file_store.path)
    counts = dashboard.overlap_counts(pairs)
    types, groups = pairs["task_type"].nunique(), pairs["annotator_group"].nunique()
    assert len(counts) == 4 * types * groups  # every combination x prompt type x group, zeros included
    assert set(counts["combination"]) == {"none", "bold", "emoji", "bold+emoji"}
    randomised = pairs[pairs[["left_emoji", "left_bold", "right_emoji", "right_bold"]].notna().any(axis=1)]
    assert len(randomised) >= 55 and counts["labels"].sum() == 2 * len(randomised)  # each side of each labelled pair
    emoji_on = counts[counts["combination"].str.contains("emoji")]["labels"].sum()
    assert emoji_on == (pairs["left_emoji"].fillna(False).astype(bool).sum()
                        + pairs["right_emoji"].fillna(False).astype(bool).sum())
    empty = int((counts["labels"] == 0).sum())
    assert empty > 0  # 60 labels cannot fill 4 x 8 x 2 cells
    fig = dashboard.build_overlap_figure(counts)
    assert f"{empty} of {len(counts)} cells empty" in fig.layout.title.text
    assert fig.data[0].colorscale[0][1] == dashboard.EMPTY_COLOUR


def test_balance_between_arms_within_groups(file_store):
    _, config = load_policy_file("acquisition/examples/mixture.toml")
    file_store.activate_policy("mixture", to_dict(config))
    simulate(file_store, labels=200, annotators=4, groups=["a", "b"], seed=5)
    table = dashboard.balance_table(file_store, dashboard.load_pairs(file_store.path), sample=150)
    assert set(table["stratum"]) == {"all", "annotator_group=a", "annotator_group=b"}
    assert set(table["reference"]) == {"observational"} and set(table["arm"]) == {"randomised_attributes"}
    assert (table.groupby("stratum")[["n_arm", "n_reference"]].first().sum(axis=1).loc["all"]) == 150
    fig = dashboard.build_balance_figure(table)
    assert "response_length" in fig.data[0].x and len(fig.data[0].y) == 3
    # a single kind of arm has nothing to compare against
    assert "Only one kind of arm" in dashboard.build_balance_figure(table.iloc[0:0]).layout.annotations[0].text


# ---------------------------------------------------------------------- model
class HashEmbedder:
    """A deterministic stand-in for MiniLM (as in test_online.py)."""

    def embed(self, texts):
        out = np.stack([np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)).normal(size=32)
                        for t in texts]).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_model_curves_from_real_checkpoints_include_ood_accuracy(file_store, tmp_path):
    trainer = OnlineTrainer(partial(Store, file_store.path), tmp_path / "models", TrainingConfig(
        retrain_every=30, min_labels=10, eval_responses=10, params=ModelConfig(hidden=16, ensemble=2, epochs=3)),
        HashEmbedder())
    simulate(file_store, labels=80, seed=1)
    trainer.train_once()
    simulate(file_store, labels=40, seed=2)
    trainer.train_once()
    checkpoints = dashboard.load_checkpoints(Checkpoints(tmp_path / "models"))
    assert checkpoints["version"].tolist() == [1, 2] and checkpoints["labels"].tolist() == [80, 120]
    assert (checkpoints["ood_pairs"] > 0).all() and (checkpoints["ood_pairs"] <= checkpoints["test_pairs"]).all()
    assert checkpoints["ood_accuracy"].between(0, 1).all()
    fig = dashboard.build_model_figure(checkpoints)
    names = {t.name for t in fig.data}
    assert {"held-out", "OOD: flipped attributes", "Pearson(reward, length)", "emoji"} <= names
    assert list(next(t for t in fig.data if t.name == "held-out").x) == ["v1", "v2"]
    empty = dashboard.build_model_figure(dashboard.load_checkpoints(Checkpoints(tmp_path / "none")))
    assert "No checkpoint" in empty.layout.annotations[0].text


def test_flipped_pairs_are_those_whose_style_favours_the_loser():
    from models.online import spurious_contrast

    plain = "Check the rent and the deposit before you sign."
    styled = "Great question! " + plain.replace("rent", "**rent**") + " 😊"
    assert spurious_contrast(styled, plain) > 0 > spurious_contrast(plain, styled)
    assert spurious_contrast(plain, plain) == 0
    long = plain + " " + " ".join(["It is worth keeping this in mind when you decide."] * 2)
    assert spurious_contrast(long, plain) == 1  # verbosity read as at least 30% more words


def test_an_attribute_is_marked_resolved_by_its_confidence_sequence_or_the_region_of_equivalence():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 4000
    on_l, on_r = rng.random(n) < 0.5, rng.random(n) < 0.5
    frame = pd.DataFrame({"label": np.where(rng.random(n) < 0.5, "left", "right"), "left_bold": on_l, "right_bold": on_r,
                          "annotator_id": np.arange(n) % 40, "annotator_group": "g", "task_type": "t", "objective": "o",
                          "left_edit_vector": '{"bold": {}}', "right_edit_vector": '{"bold": {}}'})
    plain = dashboard.effects_table(frame)
    assert len(plain) and set(plain["resolved"]) == {""}  # a null effect: the sequence straddles 0
    settled = dashboard.effects_table(frame, rope=0.1)
    overall = settled[settled["scope"] == "overall"].iloc[0]
    assert -0.1 <= overall["cs_low"] and overall["cs_high"] <= 0.1 and overall["resolved"] == "negligible"
