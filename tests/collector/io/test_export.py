import json

import pandas as pd
import pytest

from acquisition.core.config import to_dict
from acquisition.core.errors import ConfigError
from acquisition.editors import DEFAULT_ATTRIBUTES, EDITORS
from acquisition.policies import RandomisedAttributesConfig
from collector.benchmarks import HH_RLHF_SAMPLE
from collector.io.export import card_path, export
from collector.io.frames import FORMATS, arena_frame, pairs_frame, trl_conversational_frame, trl_frame
from collector.io.importers import import_file
from collector.jobs.simulate import simulate
from collector.store import Store
from collector.store.create import load_demo_pool


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
    df = trl_frame(pairs_frame(collected))
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
    df = trl_frame(pairs_frame(collected))
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


# ---------------------------------------------------------------------- formats added with import

HH = HH_RLHF_SAMPLE


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
def test_every_format_loads_with_pandas_and_datasets_and_has_a_card(collected, tmp_path, fmt, ext, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    from datasets import load_dataset

    out = tmp_path / f"x.{ext}"
    n = export(collected, fmt, out)
    df = pd.read_json(out, lines=True) if ext == "jsonl" else pd.read_parquet(out)
    assert len(df) == n > 0
    dataset = load_dataset("json" if ext == "jsonl" else "parquet", data_files=str(out), split="train",
                           cache_dir=str(tmp_path / "hf-cache"))
    assert dataset.num_rows == n
    assert list(dataset.column_names) == list(df.columns)
    card = card_path(out)
    assert card.name == f"x.{ext}.card.md"
    text = card.read_text()
    assert text.startswith("---\nlicense: ")  # the Hub's YAML front matter, then the card
    assert text.split("---\n\n", 1)[1].startswith(f"# Dataset card: x.{ext}") and f"Format `{fmt}`, {n} rows" in text


def test_trl_conversational_rows_are_message_lists(collected):
    standard, conversational = trl_frame(pairs_frame(collected)), trl_conversational_frame(pairs_frame(collected))
    assert len(standard) == len(conversational)
    row, conv = standard.iloc[0], conversational.iloc[0]
    assert conv["prompt"] == [{"role": "user", "content": row["prompt"]}]
    assert conv["chosen"] == [{"role": "assistant", "content": row["chosen"]}]
    assert conv["rejected"] == [{"role": "assistant", "content": row["rejected"]}]
    assert list(conversational.columns) == list(standard.columns)


def test_arena_battles_keep_ties_and_both_bad(collected):
    arena, pairs = arena_frame(pairs_frame(collected)), pairs_frame(collected)
    labelled = pairs[pairs["status"] == "labelled"].set_index("served_pair_id")
    assert len(arena) == len(labelled)
    assert {"model_a", "model_b", "tie", "tie (bothbad)"} <= set(arena["winner"])
    for r in arena.to_dict("records"):
        p = labelled.loc[r["served_pair_id"]]
        assert r["winner"] == {"left": "model_a", "right": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}[p["label"]]
        assert r["conversation_a"][1]["content"] == p["left_text"]
        arm = "+".join(a for a in sorted(EDITORS) if not pd.isna(p[f"right_{a}"]) and bool(p[f"right_{a}"])) or "base"
        source = p["right_source_model"]
        assert r["model_b"] == (arm if not source else source if arm == "base" else f"{source}+{arm}")
        assert r["propensity_score"] == p["propensity_score"]
    by_response = arena_frame(pairs, "response")
    assert all(m.startswith("response-") for m in by_response["model_a"])


@pytest.mark.parametrize("fmt,ext", [("trl", "jsonl"), ("trl", "parquet"), ("trl-conversational", "jsonl")])
def test_trl_export_round_trips_through_import(collected, tmp_path, fmt, ext):
    out = tmp_path / f"trl.{ext}"
    n = export(collected, fmt, out)
    fresh = Store(tmp_path / "fresh.db")
    result = import_file(fresh, out)
    exported = trl_frame(pairs_frame(collected))
    # a pair labelled the same way twice (an edit that left both texts as they were) is one line
    # twice in the file, and the importer stores a repeated pair once and says so
    rows = list(zip(exported["prompt"], exported["chosen"], exported["rejected"], exported["task_type"]))
    first = list(dict.fromkeys(rows))
    assert result.format == "trl" and result.new_preferences == len(first) and len(result.duplicate_lines) == n - len(first)
    got = [(r["prompt"], r["chosen"], r["rejected"]) for r in fresh.imported_preferences()]
    assert got == [row[:3] for row in first]
    # prompt types travel with the rows
    assert [r["task_type"] for r in fresh.imported_preferences()] == [row[3] for row in first]


def test_arena_export_round_trips_with_ties(collected, tmp_path):
    out = tmp_path / "arena.jsonl"
    export(collected, "arena", out)
    fresh = Store(":memory:")
    import_file(fresh, out)
    arena = arena_frame(pairs_frame(collected))
    got = [(r["prompt"], r["outcome"]) for r in fresh.imported_preferences()]
    outcome = {"model_a": "chosen", "model_b": "chosen", "tie": "tie", "tie (bothbad)": "both_bad"}
    battles = [(a[0]["content"], a[1]["content"], b[1]["content"], w)
               for a, b, w in zip(arena["conversation_a"], arena["conversation_b"], arena["winner"])]
    keys = [(p, x, y, outcome[w]) if w != "model_b" else (p, y, x, outcome[w]) for p, x, y, w in battles]  # chosen first
    first = [battle for i, battle in enumerate(battles) if keys[i] not in keys[:i]]  # a repeated battle is stored once
    assert got == [(p, outcome[w]) for p, _, _, w in first]


@pytest.mark.skipif(not HH.exists(), reason="HH-RLHF sample not present")
def test_simulated_collection_on_hh_rlhf_round_trips(tmp_path):
    """Import the HH-RLHF sample, collect labels from scripted annotators who answer with the
    human preference of the file, export TRL, import it into a fresh database: same pairs."""
    from acquisition.core.config import to_dict
    from acquisition.policies import RandomisedAttributesConfig
    from collector.serving.service import Collector

    store = Store(tmp_path / "hh.db")
    import_file(store, HH)
    store.activate_policy("randomised_attributes", to_dict(RandomisedAttributesConfig()))
    truth = {(r["chosen_response_id"], r["rejected_response_id"]) for r in store.imported_preferences()}
    collector = Collector(store, seed=5)
    annotators = [store.add_annotator(f"sim{i}", group="g")[0] for i in range(3)]
    decided = 0
    for i in range(120):
        annotator = annotators[i % 3]
        view = collector.next_pair(annotator["id"])
        pair = store.served_pair(view.served_pair_id)
        left, right = pair["left_base_response_id"], pair["right_base_response_id"]
        if (left, right) in truth:
            choice = "left"
        elif (right, left) in truth:
            choice = "right"
        else:  # the two prompts that appear twice have four responses: pairs the file never compared
            choice = "tie"
        decided += choice != "tie"
        collector.submit(annotator["id"], view.served_pair_id, choice)
    assert decided > 100
    out = tmp_path / "hh-trl.jsonl"
    assert export(store, "trl", out) == decided
    fresh = Store(tmp_path / "fresh.db")
    import_file(fresh, out)
    exported = trl_frame(pairs_frame(store))
    # a pair labelled twice is one line twice in the file, and the importer stores a repeated pair once
    assert [(r["prompt"], r["chosen"], r["rejected"]) for r in fresh.imported_preferences()] == list(
        dict.fromkeys(zip(exported["prompt"], exported["chosen"], exported["rejected"])))
    card = card_path(out).read_text()
    assert "hh-rlhf" in card and "| 1496 |" in card  # the imported human preferences are described


def test_an_hh_dialogue_keeps_its_turns_through_trl_conversational(tmp_path):
    from acquisition.core.turns import prompt_turns
    from collector.serving.service import Collector

    dialogue = "\n\nHuman: What is a good first pet?\n\nAssistant: A goldfish is easy.\n\nHuman: And a dog?"
    row = {"chosen": dialogue + "\n\nAssistant: A dog needs daily walks.", "rejected": dialogue + "\n\nAssistant: No."}
    (tmp_path / "hh.jsonl").write_text(json.dumps(row) + "\n")
    store = Store(tmp_path / "a.db")
    import_file(store, tmp_path / "hh.jsonl")
    store.activate_policy("observational", {})
    turns = [{"role": "user", "content": "What is a good first pet?"},
             {"role": "assistant", "content": "A goldfish is easy."}, {"role": "user", "content": "And a dog?"}]
    assert list(store.prompt(1)["turns"]) == turns  # stored with its turns
    annotator, _ = store.add_annotator("a")
    collector = Collector(store, seed=0)
    view = collector.next_pair(annotator["id"])
    assert list(view.turns) == turns
    pair = store.served_pair(view.served_pair_id)
    better_left = store.response(pair["left_base_response_id"])["text"] == "A dog needs daily walks."
    collector.submit(annotator["id"], view.served_pair_id, "left" if better_left else "right")
    out = tmp_path / "conv.jsonl"
    assert export(store, "trl-conversational", out) == 1
    exported = json.loads(out.read_text().splitlines()[0])
    assert exported["prompt"] == turns  # real message lists, every turn
    assert exported["chosen"][0]["role"] == "assistant"
    fresh = Store(tmp_path / "b.db")
    import_file(fresh, out)
    (back,) = fresh.imported_preferences()
    assert prompt_turns(back["prompt"]) == turns and list(fresh.prompt(1)["turns"]) == turns
    assert "A dog needs daily walks" in back["chosen"]


def test_every_format_loads_together_in_datasets_across_files_and_studies(tmp_path):
    """JSON Lines and Parquet of one export concatenate; two studies' Parquet files (one with
    rationales and strengths, one without) load as one dataset."""
    import datasets

    datasets.disable_progress_bars()
    studies = []
    for k, with_reasons in enumerate((True, False)):
        store = Store(tmp_path / f"s{k}.db")
        store.add_pool(load_demo_pool(), source="demo")
        store.activate_policy("randomised_attributes", to_dict(RandomisedAttributesConfig()))
        simulate(store, labels=40, seed=k)
        if with_reasons:
            store.db.execute("UPDATE labels SET rationale = 'clearer', strength = 2")
            store.db.commit()
        studies.append(store)
    for fmt in FORMATS:
        paths = []
        for k, store in enumerate(studies):
            for ext in ("jsonl", "parquet"):
                export(store, fmt, tmp_path / f"{fmt}-{k}.{ext}")
            parts = [datasets.load_dataset(kind, data_files=str(tmp_path / f"{fmt}-{k}.{ext}"), split="train")
                     for kind, ext in (("json", "jsonl"), ("parquet", "parquet"))]
            assert len(datasets.concatenate_datasets(parts)) == 2 * len(parts[0]), fmt
            paths.append(str(tmp_path / f"{fmt}-{k}.parquet"))
        both = datasets.load_dataset("parquet", data_files=paths, split="train")
        assert len(both) == sum(len(datasets.load_dataset("parquet", data_files=p, split="train")) for p in paths)
        for name, feature in both.features.items():
            assert "large_string" not in str(feature), (fmt, name)
    for store in studies:
        store.close()


def test_a_hub_ready_folder_loads_and_its_card_has_hub_yaml(collected, tmp_path):
    import datasets
    import yaml

    from collector.io.export import export_hub

    datasets.disable_progress_bars()
    folder = tmp_path / "hub"
    n = export_hub(collected, "trl", folder)
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n")
    meta = yaml.safe_load(card.split("---\n")[1])
    # the Hub's fields: "other" with its name and link, the language, the split's size in bytes
    assert meta["license"] == "other" and meta["license_name"] and meta["license_link"]
    assert meta["language"] == ["en"] and meta["size_categories"] == ["n<1K"]
    assert meta["dataset_info"]["splits"][0]["num_bytes"] == (folder / "data" / "train.parquet").stat().st_size
    assert meta["configs"][0]["data_files"][0]["path"] == "data/train.parquet"
    names = [f["name"] for f in meta["dataset_info"]["features"]]
    assert {"prompt", "chosen", "rejected", "propensity_score"} <= set(names)
    assert meta["dataset_info"]["splits"][0]["num_examples"] == n
    from_folder = datasets.load_dataset(str(folder), split="train")
    assert len(from_folder) == n
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "data"]  # the data once
    assert names == list(from_folder.features)
    with pytest.raises(ConfigError, match="new or empty folder"):
        export_hub(collected, "trl", folder)


def test_the_trl_weight_is_exactly_one_under_a_design_of_coin_flips_and_varies_where_cells_steer(store):
    """``weight``: 1 under randomised_attributes (even non-uniform, bold p = 0.3: the arm's
    probability depends on nothing observed); under overlap targeting, whose arm probabilities
    follow the cell counts, it varies, with mean about 1."""
    store.activate_policy("randomised_attributes", {"attributes": ["bold", "list_format"], "probability": 0.3})
    simulate(store, labels=150, annotators=3, groups=["a", "b"], seed=1)
    df = trl_frame(pairs_frame(store))
    assert len(df) > 100 and (df["weight"] == 1.0).all()
    store.activate_policy("overlap_targeting", {"attributes": ["bold", "list_format"]})
    simulate(store, labels=300, annotators=3, groups=["a", "b"], seed=2)
    df = trl_frame(pairs_frame(store))
    targeted = df[df["policy"] == "overlap_targeting"]
    assert (df.loc[df["policy"] == "randomised_attributes", "weight"] == 1.0).all()
    assert targeted["weight"].nunique() > 3 and abs(targeted["weight"].mean() - 1) < 0.25


def test_the_card_names_the_study_license_and_what_an_arena_model_is(collected, tmp_path):
    import yaml

    from collector.serving.study import update_study_config

    update_study_config(collected, {"license": "cc-by-4.0", "languages": ["en", "de"]})
    export(collected, "arena", tmp_path / "a.jsonl")
    card = card_path(tmp_path / "a.jsonl").read_text(encoding="utf-8")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["license"] == "cc-by-4.0" and "license_name" not in meta and meta["language"] == ["en", "de"]
    assert "the model that wrote the base response" in card and "response-<id>" not in card
    export(collected, "arena", tmp_path / "r.jsonl", arena_models="response")
    assert "one response copy (`response-<id>`)" in card_path(tmp_path / "r.jsonl").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="study.license"):
        update_study_config(collected, {"license": "CC BY"})


def _undated(card: str) -> str:
    return "\n".join(line for line in card.splitlines() if not line.startswith("Exported by Deconfound on"))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
def test_a_streamed_export_is_the_whole_frame_export_and_its_card(collected, tmp_path, monkeypatch, fmt, ext):
    """``export`` reads the log a few served pairs at a time, writes the file a few rows at a
    time and builds the card from the pairs without their texts; the whole-frame path
    (``export_frames``, ``build_card`` on ``pairs_frame``) must give the same file (byte for
    byte in JSON Lines) and the same card. The study has an excluded annotator, a tie, a
    both-bad, a skip, an unlabelled pair, and weights that vary (a policy steered by cells)."""
    import functools

    import pyarrow.parquet as pq

    import collector.io.export as export_module
    from collector.io.card import build_card
    from collector.io.export import export_frames, write_frame
    from collector.jobs.annotator_quality import exclude_annotator

    store = collected
    store.activate_policy("overlap_targeting", {"attributes": ["bold", "list_format"]})
    simulate(store, labels=60, annotators=2, groups=["c"], seed=5)
    exclude_annotator(store, int(store.annotators()[1]["id"]), "speeding")
    whole, pairs = export_frames(store, fmt)
    expected = tmp_path / f"whole.{ext}"
    with open(expected, "wb") as f:
        write_frame(whole, f, ext)

    monkeypatch.setattr(export_module, "EXPORT_BATCH_ROWS", 3)
    monkeypatch.setattr(type(store), "served_pair_log_batches",
                        functools.partialmethod(type(store).served_pair_log_batches, batch=4))
    assert len(list(store.served_pair_log_batches())) > 50
    out = tmp_path / f"many.{ext}"
    assert export(store, fmt, out) == len(whole) > 6
    if fmt.startswith("trl"):
        assert whole["weight"].nunique() > 3  # weights over the whole export, not a batch
    if ext == "jsonl":
        assert out.read_bytes() == expected.read_bytes()
    else:
        first, second = pq.read_table(expected), pq.read_table(out)
        assert first.schema.equals(second.schema) and first.equals(second)
    card = build_card(store, pairs, fmt=fmt, export_name=f"many.{ext}", rows=len(whole), frame=whole,
                      num_bytes=out.stat().st_size)  # small row groups make a larger Parquet file
    assert _undated(card_path(out).read_text()) == _undated(card)
    assert "speeding" in card and ("Style control" in card) == (fmt == "arena")
