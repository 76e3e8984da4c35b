import json

import pandas as pd
import pytest

from acquisition.editors import DEFAULT_ATTRIBUTES
from collector.errors import ConfigError
from collector.export import export, pairs_frame, trl_frame
from collector.simulate import simulate


@pytest.fixture
def collected(store, collector, annotator):
    simulate(store, labels=300, annotators=4, groups=["a", "b"], seed=3)
    # one of each non-label outcome by a real annotator
    p = collector.next_pair(annotator["id"])
    collector.skip(annotator["id"], p.served_pair_id)
    for choice in ("tie", "both_bad"):
        p = collector.next_pair(annotator["id"])
        collector.submit(annotator["id"], p.served_pair_id, choice)
    collector.next_pair(annotator["id"])  # left unlabelled
    return store


def test_trl_has_prompt_chosen_rejected_and_excludes_ties(collected):
    df = trl_frame(collected)
    assert list(df.columns[:3]) == ["prompt", "chosen", "rejected"]
    labels = pd.DataFrame(collected.labels())
    assert len(df) == int(labels["choice"].isin(["left", "right"]).sum())
    assert (df["propensity_score"] > 0).all()
    assert {"chosen_position", "annotator_group", "policy", "arm", "chosen_edit_vector"} <= set(df.columns)
    assert (df["chosen"] != df["rejected"]).all()


def test_pairs_log_has_every_served_pair_with_status(collected):
    df = pairs_frame(collected)
    assert len(df) == collected.counts()["served_pairs"]
    assert {"labelled", "skipped", "unlabelled"} <= set(df["status"])
    assert {"tie", "both_bad", "left", "right"} <= set(df["label"].dropna())
    for col in ("propensity_score", "left_edit_vector", "position_swapped", "annotator_group",
                "policy", "policy_version", "served_at", "labelled_at", "latency_ms"):
        assert col in df.columns
    json.loads(df["left_edit_vector"].iloc[0])


def test_randomised_attributes_are_balanced_between_chosen_and_rejected(collected):
    df = trl_frame(collected)
    for a in DEFAULT_ATTRIBUTES:
        assert 0.35 < df[f"chosen_{a}"].mean() < 0.65, a
        assert 0.35 < df[f"rejected_{a}"].mean() < 0.65, a


@pytest.mark.parametrize("fmt", ["trl", "pairs"])
@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
def test_export_files_load_with_pandas(collected, tmp_path, fmt, ext):
    out = tmp_path / f"x.{ext}"
    n = export(collected, fmt, out)
    df = pd.read_json(out, lines=True) if ext == "jsonl" else pd.read_parquet(out)
    assert len(df) == n > 0


def test_export_refuses_unknown_extension(store, tmp_path):
    with pytest.raises(ConfigError, match=".jsonl or .parquet"):
        export(store, "trl", tmp_path / "x.csv")
