import json
import sqlite3

import pandas as pd
import pytest

from acquisition.core.config import from_dict, to_dict
from acquisition.core.errors import ConfigError, ImportFormatError, NotFoundError
from acquisition.policies import RandomisedAttributesConfig
from collector.cli import main
from collector.io.frames import pairs_frame, trl_frame
from collector.io.gold import add_gold_file, add_gold_text
from collector.jobs.annotator_quality import (
    annotator_quality,
    exclude_annotator,
    include_annotator,
    overlap_summary,
)
from collector.serving.qc_settings import QCConfig, parse_assignments, qc_config, qc_version, update_qc_config
from collector.serving.service import Collector
from collector.store import Store
from collector.store.create import init_db, load_demo_pool

GOLD = [
    {"prompt": "What is 2 + 2?", "chosen": "2 + 2 is 4.", "rejected": "2 + 2 is 5.",
     "chosen_quality": 5, "rejected_quality": 1},
    {"prompt": "Which planet is closest to the Sun?", "left": "Venus.", "right": "Mercury.",
     "expected": "right", "task_type": "factual", "left_quality": 1, "right_quality": 5},
    {"prompt": "Name a primary colour.", "chosen": "Red.", "rejected": "Red!", "expected": "tie"},
]


def _gold_text(records=GOLD) -> str:
    return "\n".join(json.dumps(r) for r in records) + "\n"


def _people(store, n, group="g"):
    return [store.add_annotator(f"p{i}", group=group)[0] for i in range(n)]


def _label_next(collector, person, choice="left"):
    view = collector.next_pair(person["id"])
    collector.submit(person["id"], view.served_pair_id, choice)
    return collector.store.served_pair(view.served_pair_id)


# ---------------------------------------------------------------------- config
@pytest.mark.parametrize("data,message", [
    ({"gold_rate": 1.5}, "qc.gold_rate: must be at least 0 and below 1"),
    ({"overlap": 0}, "qc.overlap: must be between 1 and 50"),
    ({"gold_rate": 0.6, "attention_rate": 0.5}, "gold_rate + attention_rate must stay below 1"),
    ({"attention_kinds": ["drop_answer", "spelling"]}, "qc.attention_kinds[1]: unknown attention check 'spelling'"),
    ({"attention_kinds": []}, "qc.attention_kinds: name at least one"),
    ({"overlap": "3"}, "qc.overlap: expected an integer"),
    ({"overlaps": 3}, "qc: unknown key 'overlaps'"),
    ({"min_gold_accuracy": 2}, "qc.min_gold_accuracy: must be between 0 and 1"),
])
def test_qc_config_errors_name_the_field(data, message):
    with pytest.raises(ConfigError) as error:
        from_dict(QCConfig, data, "qc")
    assert message in str(error.value)


def test_qc_config_is_stored_versioned_and_defaults_off(store):
    assert qc_config(store) == QCConfig() and not QCConfig().active and qc_version(store) == 0
    update_qc_config(store, {"overlap": 3})
    update_qc_config(store, parse_assignments(["gold_rate=0.1", 'attention_kinds=["drop_answer"]']))
    config = qc_config(store)
    assert (config.overlap, config.gold_rate, config.attention_kinds) == (3, 0.1, ["drop_answer"])
    assert qc_version(store) == 2
    with pytest.raises(ConfigError, match="qc.gold_rate"):
        update_qc_config(store, {"gold_rate": -0.1})
    assert qc_version(store) == 2 and qc_config(store).gold_rate == 0.1


def test_assignment_values_are_toml():
    assert parse_assignments(["overlap=2", "gold_rate = 0.05"]) == {"overlap": 2, "gold_rate": 0.05}
    with pytest.raises(ConfigError, match="qc.attention_kinds: .* is not a TOML value"):
        parse_assignments(["attention_kinds=[drop_answer]"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_assignments(["overlap"])


def test_qc_off_leaves_serving_as_it_was(store):
    """With the default config no QC draw is made, so a seeded collector serves what it did."""
    people = _people(store, 2)
    other = Store(":memory:")
    other.add_pool(load_demo_pool(), source="demo")
    other.activate_policy("randomised_attributes", to_dict(RandomisedAttributesConfig()))
    other_people = _people(other, 2)
    a, b = Collector(store, seed=5), Collector(other, seed=5)
    for i in range(6):
        pa, pb = _label_next(a, people[i % 2]), _label_next(b, other_people[i % 2])
        assert (pa["left_response_id"], pa["right_response_id"], pa["seed"]) == \
               (pb["left_response_id"], pb["right_response_id"], pb["seed"])
        assert pa["qc_kind"] == "regular"
    other.close()


# ---------------------------------------------------------------------- overlap
def test_overlap_k_gives_every_item_k_distinct_annotators(store):
    update_qc_config(store, {"overlap": 3})
    collector = Collector(store, seed=2)
    people = _people(store, 5)
    for n in range(150):
        _label_next(collector, people[n % 5], choice=("left", "right", "tie")[n % 3])
    log = pairs_frame(store)
    assert set(log["qc_kind"]) == {"regular", "repeat"}
    log["item"] = log["origin_served_pair_id"].fillna(log["served_pair_id"]).astype(int)
    per_item = log.groupby("item")["annotator_id"]
    assert (per_item.nunique() == per_item.size()).all()  # nobody saw an item twice
    counts = per_item.size()
    assert counts.max() == 3 and (counts == 3).sum() >= len(counts) - 3  # only the newest lag behind
    assert store.label_count() == 150 == len(store.labels())  # every label kept, none duplicated
    summary = overlap_summary(store)
    assert summary["items"].sum() == len(counts) and summary["labels"].max() == 3


def test_a_repeat_is_the_same_item_with_the_same_assignment_record(store):
    update_qc_config(store, {"overlap": 2})
    collector = Collector(store, seed=3)
    first, second = store.add_annotator("a", group="g1")[0], store.add_annotator("b", group="g2")[0]
    origin = _label_next(collector, first)
    repeat = _label_next(collector, second)
    assert repeat["qc_kind"] == "repeat" and repeat["origin_served_pair_id"] == origin["id"]
    for column in ("prompt_id", "left_response_id", "right_response_id", "left_base_response_id",
                   "right_base_response_id", "left_edit_vector", "right_edit_vector", "position_swapped",
                   "policy_id", "policy_name", "policy_version", "arm", "propensity_score",
                   "arm_propensity", "seed"):
        assert repeat[column] == origin[column], column
    assert repeat["annotator_group"] == "g2" and repeat["annotator_id"] == second["id"]
    # the item has its two labels: nobody gets a third copy, the next pair is new
    third = _label_next(collector, store.add_annotator("c")[0])
    assert third["qc_kind"] == "regular"
    # repeats are real labels of the item: they train and they export
    assert {r["served_pair_id"] for r in store.training_rows()} >= {origin["id"], repeat["id"]}
    assert repeat["id"] in set(pairs_frame(store)["served_pair_id"])


def test_a_repeat_is_never_served_twice_to_one_annotator_even_after_a_skip(store):
    update_qc_config(store, {"overlap": 2})
    collector = Collector(store, seed=4)
    a, b = _people(store, 2)
    origin = _label_next(collector, a)
    view = collector.next_pair(b["id"])
    assert store.served_pair(view.served_pair_id)["origin_served_pair_id"] == origin["id"]
    collector.skip(b["id"], view.served_pair_id)
    for _ in range(5):
        pair = _label_next(collector, b)
        assert pair["origin_served_pair_id"] != origin["id"]
    # the item still needs its second label; a third annotator gets it
    c = store.add_annotator("c")[0]
    assert _label_next(collector, c)["origin_served_pair_id"] == origin["id"]


def test_a_repeat_on_lease_counts_so_concurrent_annotators_do_not_overshoot(store):
    update_qc_config(store, {"overlap": 2})
    collector = Collector(store, seed=6)
    a, b, c = _people(store, 3)
    origin = _label_next(collector, a)
    open_repeat = store.served_pair(collector.next_pair(b["id"]).served_pair_id)
    assert open_repeat["origin_served_pair_id"] == origin["id"]
    assert store.served_pair(collector.next_pair(c["id"]).served_pair_id)["qc_kind"] == "regular"


def test_an_excluded_annotators_label_does_not_count_towards_overlap(store):
    update_qc_config(store, {"overlap": 2})
    collector = Collector(store, seed=7)
    a, b, c = _people(store, 3)
    origin = _label_next(collector, a)
    assert _label_next(collector, b)["origin_served_pair_id"] == origin["id"]
    assert _label_next(collector, c)["qc_kind"] == "regular"  # item done: two labels
    exclude_annotator(store, b["id"], "fails gold")
    d = store.add_annotator("d")[0]
    assert _label_next(collector, d)["origin_served_pair_id"] == origin["id"]


# ---------------------------------------------------------------------- gold pairs
def test_gold_file_is_added_once_and_stays_out_of_the_pool(store, tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text(_gold_text())
    pool_before = store.pool_snapshot()
    counts_before = store.counts()
    assert add_gold_file(store, path) == (3, 0)
    counts = store.counts()
    assert counts["base_responses"] == counts_before["base_responses"] and counts["gold_responses"] == 6
    assert add_gold_file(store, path) == (0, 3)
    items = store.gold_items()
    assert [i["expected"] for i in items] == ["first", "second", "tie"]
    assert items[0]["first_text"] == "2 + 2 is 4." and items[1]["second_text"] == "Mercury."
    pool_after = store.pool_snapshot()
    assert pool_after.response_text == pool_before.response_text
    assert not any(p.text == "What is 2 + 2?" for p in pool_after.servable)


@pytest.mark.parametrize("bad,message", [
    ('{"prompt": "Q?", "chosen": "A."}', "field 'rejected': expected a non-empty string"),
    ('{"prompt": "Q?", "left": "A.", "right": "B."}', "field 'expected': required with left/right"),
    ('{"prompt": "Q?", "left": "A.", "right": "B.", "expected": "chosen"}', "field 'expected': must be one of"),
    ('{"prompt": "Q?", "chosen": "A.", "rejected": "B.", "answer": "A"}', "field 'answer' is not a gold field"),
    ('{"prompt": "Q?", "chosen": "A.", "rejected": "A."}', "field 'rejected': the two responses are the same"),
    ('{"prompt": "Q?", "chosen": "A.", "rejected": "B.", "chosen_quality": "high"}', "field 'chosen_quality'"),
    ('{"prompt": "Q?", "chosen": "A."', "not valid JSON"),
    ('["Q?", "A.", "B."]', "expected a JSON object"),
])
def test_a_bad_gold_line_names_line_and_field_and_adds_nothing(store, bad, message):
    text = json.dumps(GOLD[0]) + "\n" + bad + "\n" + json.dumps(GOLD[1]) + "\n"
    before = store.counts()
    with pytest.raises(ImportFormatError) as error:
        add_gold_text(store, text, "gold.jsonl")
    assert str(error.value).startswith("gold.jsonl, line 2") and message in str(error.value)
    assert store.counts() == before and store.gold_items() == []


def test_a_gold_response_that_is_a_pool_response_is_refused_with_its_line(store):
    prompt = store.pool_snapshot().servable[0]
    pool_text = store.pool_snapshot().response_text[prompt.response_ids[0]]
    text = _gold_text([GOLD[0], {"prompt": prompt.text, "chosen": pool_text, "rejected": "No idea."}])
    with pytest.raises(ImportFormatError, match=r"gold.jsonl, line 2, field 'chosen': this text is already response"):
        add_gold_text(store, text, "gold.jsonl")
    assert store.gold_items() == []


def test_gold_pairs_are_served_with_their_expected_side_and_never_twice(store):
    add_gold_text(store, _gold_text(), "gold.jsonl")
    update_qc_config(store, {"gold_rate": 0.9})
    collector = Collector(store, seed=8)
    person = _people(store, 1)[0]
    served = [_label_next(collector, person) for _ in range(12)]
    gold = [p for p in served if p["qc_kind"] == "gold"]
    assert sorted(p["gold_item_id"] for p in gold) == [1, 2, 3]  # each once, then regular pairs
    assert served[-1]["qc_kind"] == "regular"
    for pair in gold:
        item = next(i for i in store.gold_items() if i["id"] == pair["gold_item_id"])
        shown = {"left": store.response(pair["left_response_id"])["text"],
                 "right": store.response(pair["right_response_id"])["text"]}
        if item["expected"] == "tie":
            assert pair["qc_expected"] == "tie"
        else:
            winner = item["first_text"] if item["expected"] == "first" else item["second_text"]
            assert shown[pair["qc_expected"]] == winner
        assert pair["policy_name"] == "quality_control" and 0 < pair["propensity_score"] <= 1
    # gold labels never train, and leave the TRL export; the pairs export keeps them
    trained = {r["served_pair_id"] for r in store.training_rows()}
    assert trained and not trained & {p["id"] for p in gold}
    assert not set(trl_frame(pairs_frame(store))["served_pair_id"]) & {p["id"] for p in gold}
    pairs = pairs_frame(store)
    assert (pairs.loc[pairs["qc_kind"] == "gold", "qc_expected"].notna()).all()
    assert len(trl_frame(pairs_frame(store), include_qc=True)) > len(trl_frame(pairs_frame(store)))


# ---------------------------------------------------------------------- attention checks
@pytest.mark.parametrize("kind", ["drop_answer", "off_topic"])
def test_attention_checks_pair_a_response_with_its_broken_copy(store, kind):
    update_qc_config(store, {"attention_rate": 0.9, "attention_kinds": [kind]})
    collector = Collector(store, seed=9)
    person = _people(store, 1)[0]
    checks = [p for p in (_label_next(collector, person) for _ in range(10)) if p["qc_kind"] == "attention"]
    assert len(checks) >= 6
    pool = store.pool_snapshot()
    for pair in checks:
        assert pair["arm"] == f"attention:{kind}"
        assert pair["left_base_response_id"] == pair["right_base_response_id"]
        base = pool.response_text[pair["left_base_response_id"]]
        expected = store.response(pair[f"{pair['qc_expected']}_response_id"])
        other_side = "right" if pair["qc_expected"] == "left" else "left"
        broken = store.response(pair[f"{other_side}_response_id"])
        assert expected["text"] == base and broken["text"] != base
        assert broken["parent_response_id"] == pair["left_base_response_id"]
        assert json.loads(broken["manipulation_check"]) == {kind: True}
        assert pair[f"{other_side}_edit_vector"][kind]["on"] is True
        assert 0 < pair["propensity_score"] <= 1
    assert {p["qc_expected"] for p in checks} == {"left", "right"}  # position randomised
    assert not {r["served_pair_id"] for r in store.training_rows()} & {p["id"] for p in checks}
    assert not {r["choice"] for r in store.decisive_edit_vectors()
                if kind in r["left_edit_vector"] + r["right_edit_vector"]}


# ---------------------------------------------------------------------- quality and exclusion
def test_annotator_quality_scores_gold_attention_latency_and_skips(store):
    add_gold_text(store, _gold_text(GOLD[:2]), "gold.jsonl")
    update_qc_config(store, {"gold_rate": 0.5, "attention_rate": 0.4, "min_checks": 2})
    collector = Collector(store, seed=10)
    careful, careless = store.add_annotator("careful", group="x")[0], store.add_annotator("careless", group="y")[0]
    for person, right in ((careful, True), (careless, False)):
        for n in range(14):
            view = collector.next_pair(person["id"])
            pair = store.served_pair(view.served_pair_id)
            if n == 13:
                collector.skip(person["id"], view.served_pair_id)
                continue
            expected = pair["qc_expected"] or "left"
            answer = expected if right else {"left": "right", "right": "left"}.get(expected, "left")
            collector.submit(person["id"], view.served_pair_id, answer)
    quality = annotator_quality(store).set_index("annotator")
    assert list(quality.columns) == ["annotator_id", "group", "labels", "gold_seen", "gold_accuracy",
                                     "attention_seen", "attention_pass_rate", "repeats",
                                     "median_latency_ms", "skip_rate", "excluded", "reason", "warning"]
    good, bad = quality.loc["careful"], quality.loc["careless"]
    assert good["labels"] == bad["labels"] == 13 and good["group"] == "x"
    assert good["gold_seen"] == 2 and good["gold_accuracy"] == 1.0 and good["attention_pass_rate"] == 1.0
    assert bad["gold_seen"] == 2 and bad["gold_accuracy"] == 0.0 and bad["attention_pass_rate"] == 0.0
    assert good["skip_rate"] == pytest.approx(1 / 14) and good["median_latency_ms"] >= 0
    assert good["warning"] == "" and "gold accuracy 0.00 < 0.70" in bad["warning"]
    store.db.execute("UPDATE labels SET latency_ms = id * 7 % 50")  # distinct values: check the SQL median
    expected = pd.DataFrame(store.labels()).groupby("annotator_id")["latency_ms"].median()
    got = annotator_quality(store).set_index("annotator_id")["median_latency_ms"]
    assert got.to_dict() == expected.astype(float).to_dict()
    assert "attention 0.00 < 0.80" in bad["warning"]
    assert pd.isna(annotator_quality(store.__class__(":memory:"))["gold_accuracy"]).all()


def test_exclusion_keeps_labels_flags_them_and_removes_them_from_training(store, collector):
    a, b = _people(store, 2)
    for n in range(10):
        _label_next(collector, (a, b)[n % 2])
    with pytest.raises(ConfigError, match="--reason must say why"):
        exclude_annotator(store, a["id"], "  ")
    with pytest.raises(NotFoundError):
        exclude_annotator(store, 999, "gone")
    exclude_annotator(store, a["id"], "gold accuracy 0.2")
    assert store.label_count() == 10  # kept
    trained = {r["served_pair_id"] for r in store.training_rows()}
    assert len(trained) == 5 and len(store.training_rows(include_excluded=True)) == 10
    assert set(trl_frame(pairs_frame(store))["annotator_id"]) == {b["id"]}
    assert set(trl_frame(pairs_frame(store), include_excluded=True)["annotator_id"]) == {a["id"], b["id"]}
    pairs = pairs_frame(store)
    flagged = pairs[pairs["annotator_id"] == a["id"]]
    assert flagged["excluded"].all() and (flagged["excluded_reason"] == "gold accuracy 0.2").all()
    assert not pairs.loc[pairs["annotator_id"] == b["id"], "excluded"].any()
    row = annotator_quality(store).set_index("annotator_id").loc[a["id"]]
    assert row["excluded"] and row["reason"] == "gold accuracy 0.2"
    include_annotator(store, a["id"])
    assert len(store.training_rows()) == 10 and not pairs_frame(store)["excluded"].any()


def test_effect_estimates_leave_out_qc_pairs_and_excluded_annotators(store):
    from acquisition.effects import labelled_pairs

    add_gold_text(store, _gold_text(), "gold.jsonl")
    update_qc_config(store, {"gold_rate": 0.3, "attention_rate": 0.3, "overlap": 2})
    collector = Collector(store, seed=11)
    a, b = _people(store, 2)
    for n in range(40):
        _label_next(collector, (a, b)[n % 2])
    exclude_annotator(store, b["id"], "test")
    used = labelled_pairs(pairs_frame(store))
    assert set(used["qc_kind"]) <= {"regular", "repeat"} and set(used["annotator_id"]) == {a["id"]}


# ---------------------------------------------------------------------- migration
V1_DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE prompts (id INTEGER PRIMARY KEY, text TEXT NOT NULL, text_hash TEXT NOT NULL UNIQUE,
    task_type TEXT NOT NULL DEFAULT 'general', source TEXT, external_id TEXT, created_at REAL NOT NULL);
CREATE TABLE responses (id INTEGER PRIMARY KEY, prompt_id INTEGER NOT NULL REFERENCES prompts(id),
    text TEXT NOT NULL, text_hash TEXT NOT NULL, parent_response_id INTEGER REFERENCES responses(id),
    edit_vector TEXT, edit_key TEXT, manipulation_check TEXT, quality REAL, model TEXT, source TEXT,
    created_at REAL NOT NULL);
CREATE TABLE annotators (id INTEGER PRIMARY KEY, name TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
    group_name TEXT NOT NULL DEFAULT 'default', objective TEXT, covariates TEXT NOT NULL DEFAULT '{}',
    is_simulated INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE policies (id INTEGER PRIMARY KEY, name TEXT NOT NULL, version INTEGER NOT NULL UNIQUE,
    config TEXT NOT NULL, is_active INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE served_pairs (id INTEGER PRIMARY KEY, annotator_id INTEGER NOT NULL REFERENCES annotators(id),
    annotator_group TEXT NOT NULL, prompt_id INTEGER NOT NULL REFERENCES prompts(id),
    left_response_id INTEGER NOT NULL, right_response_id INTEGER NOT NULL,
    left_base_response_id INTEGER NOT NULL, right_base_response_id INTEGER NOT NULL,
    left_edit_vector TEXT NOT NULL, right_edit_vector TEXT NOT NULL, position_swapped INTEGER NOT NULL,
    policy_id INTEGER, policy_name TEXT NOT NULL, policy_version INTEGER NOT NULL, arm TEXT NOT NULL,
    propensity_score REAL NOT NULL, arm_propensity REAL NOT NULL, acquisition_score REAL,
    model_version TEXT, seed INTEGER, served_at REAL NOT NULL, lease_expires_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'served', skipped_at REAL);
CREATE TABLE labels (id INTEGER PRIMARY KEY, served_pair_id INTEGER NOT NULL UNIQUE REFERENCES served_pairs(id),
    annotator_id INTEGER NOT NULL REFERENCES annotators(id), choice TEXT NOT NULL, strength INTEGER,
    rationale TEXT, latency_ms INTEGER NOT NULL, created_at REAL NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1'), ('pool_version', '1');
INSERT INTO prompts VALUES (1, 'Why is the sky blue?', 'h1', 'science', 'old', NULL, 0);
INSERT INTO responses (id, prompt_id, text, text_hash, quality, created_at) VALUES
    (1, 1, 'Rayleigh scattering makes blue light scatter most. That is why the sky looks blue.', 'r1', 4, 0),
    (2, 1, 'Because it reflects the sea.', 'r2', 1, 0);
INSERT INTO annotators VALUES (1, 'old-timer', 'tok', 'g', NULL, '{}', 0, 0);
INSERT INTO policies VALUES (1, 'randomised_attributes',
    1, '{"attributes": ["bold"], "probabilities": {}, "probability": 0.5}', 1, 0);
INSERT INTO served_pairs VALUES (1, 1, 'g', 1, 1, 2, 1, 2, '{}', '{}', 0, 1, 'randomised_attributes', 1,
    'randomised', 0.25, 0.25, NULL, NULL, 42, 0, 10, 'labelled', NULL);
INSERT INTO labels VALUES (1, 1, 1, 'left', 2, 'clearer', 900, 1);
"""


def test_a_v1_database_gets_the_qc_columns_and_keeps_its_labels(tmp_path):
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript(V1_DDL)
    conn.close()
    store = Store(path)
    assert {"qc_kind", "origin_served_pair_id", "gold_item_id", "qc_expected", "overlap_done"} <= set(
        store.db["served_pairs"].columns_dict)
    assert {"excluded", "excluded_reason"} <= set(store.db["annotators"].columns_dict)
    assert "gold_items" in store.db.table_names()
    old = store.served_pair(1)
    assert old["qc_kind"] == "regular" and old["origin_served_pair_id"] is None
    assert store.labels()[0]["rationale"] == "clearer" and len(store.training_rows()) == 1
    assert not pairs_frame(store)["excluded"].any()
    # the old pair takes part in overlap at once
    update_qc_config(store, {"overlap": 2})
    newcomer = store.add_annotator("new")[0]
    repeat = store.served_pair(Collector(store, seed=0).next_pair(newcomer["id"]).served_pair_id)
    assert repeat["origin_served_pair_id"] == 1 and repeat["seed"] == 42
    store.close()
    assert Store(path).label_count() == 1  # opening again changes nothing


# ---------------------------------------------------------------------- CLI
def test_cli_gold_qc_and_exclusion(tmp_path, capsys):
    db = str(tmp_path / "q.db")
    init_db(db, demo=True)
    gold = tmp_path / "gold.jsonl"
    gold.write_text(_gold_text(GOLD[:1]) + '{"prompt": "Q?", "chosen": ""}\n')
    assert main(["gold", "add", str(gold), "--db", db]) == 1
    assert f"{gold}, line 2, field 'chosen'" in capsys.readouterr().err
    gold.write_text(_gold_text(GOLD[:2]))
    assert main(["gold", "add", str(gold), "--db", db]) == 0
    assert "Added 2 gold pairs (0 already present)." in capsys.readouterr().out
    assert main(["qc", "set", "overlap=2", "gold_rate=0.2", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out)["overlap"] == 2
    assert main(["qc", "set", "attention_rate=1.2", "--db", db]) == 1
    assert "qc.attention_rate: must be at least 0 and below 1" in capsys.readouterr().err
    config_file = tmp_path / "qc.toml"
    config_file.write_text("[qc]\nattention_rate = 0.1\nattention_kinds = ['off_topic']\nmin_checks = 4\n")
    assert main(["qc", "set", "--file", str(config_file), "--db", db]) == 0
    capsys.readouterr()
    config_file.write_text("[qc]\nattention_rate = 'often'\n")
    assert main(["qc", "set", "--file", str(config_file), "--db", db]) == 1
    assert f"{config_file}.attention_rate: expected a number" in capsys.readouterr().err
    assert main(["qc", "show", "--db", db]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["overlap"], shown["attention_kinds"], shown["version"]) == (2, ["off_topic"], 2)
    assert main(["simulate", "--labels", "30", "--annotators", "3", "--db", db]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):  # --reason is required
        main(["annotator", "exclude", "1", "--db", db])
    assert "--reason" in capsys.readouterr().err
    assert main(["annotator", "exclude", "1", "--reason", "too fast", "--db", db]) == 0
    assert "Excluded annotator 1" in capsys.readouterr().out
    assert main(["annotator", "list", "--db", db]) == 0
    assert "excluded: too fast" in capsys.readouterr().out
    assert main(["qc", "report", "--db", db]) == 0
    report = capsys.readouterr().out
    assert "gold_accuracy" in report and "too fast" in report
    assert main(["gold", "list", "--db", db]) == 0
    assert "2 + 2 is 4." in capsys.readouterr().out
    assert main(["annotator", "include", "1", "--db", db]) == 0
    store = Store(db)
    assert not store.annotator(1)["excluded"] and store.label_count() == 30
    kinds = set(pairs_frame(store)["qc_kind"])
    store.close()
    assert "regular" in kinds and kinds & {"repeat", "gold", "attention"}


def test_the_repeat_scan_is_bounded_per_request_and_works_through_a_backlog(store):
    collector = Collector(store, seed=12)
    a, b = _people(store, 2)
    for _ in range(200):  # QC off: 200 regular pairs with one label each
        _label_next(collector, a)
    done = "SELECT count(*) AS n FROM served_pairs WHERE overlap_done = 1"
    for call in range(1, 5):  # overlap 1: every pair has its label, 64 are checked per call
        assert store.serve_repeat(b, overlap=1, max_scan=64) is None
        assert store._one(done)["n"] == min(200, 64 * call)
    update_qc_config(store, {"overlap": 1, "gold_rate": 0.0})
    assert store._one(done)["n"] == 200  # not raised: nothing to recount
    update_qc_config(store, {"overlap": 2})
    assert store._one(done)["n"] == 0
    assert store.serve_repeat(b, overlap=2)["origin_served_pair_id"] == 1
