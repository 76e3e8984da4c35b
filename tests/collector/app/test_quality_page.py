import json

import pytest
from streamlit.testing.v1 import AppTest

from collector.app import REPOSITORY
from collector.io.gold import add_gold_text
from collector.jobs.simulate import simulate
from collector.serving.qc_settings import qc_config, update_qc_config
from collector.store import Store
from collector.store.create import init_db

PAGE = REPOSITORY / "collector" / "app" / "pages" / "quality.py"
GOLD = [
    {"prompt": "What is 2 + 2?", "chosen": "2 + 2 is 4.", "rejected": "2 + 2 is 5.",
     "chosen_quality": 5, "rejected_quality": 1},
    {"prompt": "Closest planet to the Sun?", "chosen": "Mercury.", "rejected": "Venus.",
     "chosen_quality": 5, "rejected_quality": 1},
]


@pytest.fixture
def quality_db(tmp_path, monkeypatch):
    """A demo database with gold pairs, QC on, and 60 simulated labels."""
    db = tmp_path / "q.db"
    init_db(db, demo=True)
    store = Store(db)
    add_gold_text(store, "\n".join(json.dumps(g) for g in GOLD), "gold.jsonl")
    update_qc_config(store, {"overlap": 2, "gold_rate": 0.2, "attention_rate": 0.1})
    simulate(store, labels=60, annotators=3, seed=0)
    store.close()
    monkeypatch.setenv("DECONFOUND_DB", str(db))
    monkeypatch.setenv("DECONFOUND_RESEARCHER_PASSWORD", "s3cret")
    return db


def _logged_in():
    at = AppTest.from_file(str(PAGE), default_timeout=30).run()
    at.text_input(key="quality_password").input("s3cret")
    at.button(key="quality_enter").click().run()
    assert not at.exception
    return at


def test_locked_without_the_password(quality_db):
    at = AppTest.from_file(str(PAGE), default_timeout=30).run()
    assert not at.dataframe
    at.text_input(key="quality_password").input("guess")
    at.button(key="quality_enter").click().run()
    assert "Wrong researcher password" in at.error[0].value and not at.dataframe


def test_shows_per_annotator_quality_overlap_and_gold(quality_db):
    at = _logged_in()
    quality = at.dataframe[0].value
    assert list(quality["annotator"]) == ["sim-default-1", "sim-default-2", "sim-default-3"]
    assert quality["labels"].sum() == 60 and quality["gold_seen"].sum() > 0
    assert quality["gold_accuracy"].between(0, 1).all()
    overlap = at.dataframe[1].value
    assert overlap["labels"].max() == 2
    gold = at.dataframe[2].value
    assert list(gold["prompt"]) == [g["prompt"] for g in GOLD] and gold["labels"].sum() > 0


def test_exclude_needs_a_reason_then_flags_and_include_undoes(quality_db):
    at = _logged_in()
    at.selectbox(key="quality_annotator").set_value("2 · sim-default-2").run()
    at.button(key="quality_exclude").click().run()
    assert "--reason must say why" in at.error[0].value
    store = Store(quality_db)
    assert not store.annotator(2)["excluded"]
    store.close()
    at.text_input(key="quality_reason").input("answers in under a second").run()
    at.button(key="quality_exclude").click().run()
    assert not at.exception
    assert "Excluded sim-default-2: answers in under a second." in at.success[0].value
    row = at.dataframe[0].value.set_index("annotator_id").loc[2]
    assert row["excluded"] and row["reason"] == "answers in under a second"
    store = Store(quality_db)
    assert store.annotator(2)["excluded_reason"] == "answers in under a second"
    assert store.label_count(2) == 20  # kept
    assert len(store.training_rows()) < len(store.training_rows(include_excluded=True))
    store.close()
    at.selectbox(key="quality_annotator").set_value("2 · sim-default-2 (excluded)").run()
    at.button(key="quality_include").click().run()
    assert "sim-default-2 is included again." in at.success[0].value
    store = Store(quality_db)
    assert not store.annotator(2)["excluded"]
    store.close()


def test_settings_form_validates_and_saves(quality_db):
    at = _logged_in()
    assert at.number_input(key="quality_overlap").value == 2
    at.number_input(key="quality_gold_rate").set_value(0.6)
    at.number_input(key="quality_attention_rate").set_value(0.5)
    at.button(key="quality_save").click().run()
    assert "gold_rate + attention_rate must stay below 1" in at.error[0].value
    store = Store(quality_db)
    assert qc_config(store).gold_rate == 0.2
    store.close()
    at.number_input(key="quality_attention_rate").set_value(0.05)
    at.number_input(key="quality_overlap").set_value(3)
    at.multiselect(key="quality_attention_kinds").set_value(["drop_answer"])
    at.button(key="quality_save").click().run()
    assert not at.exception and "version 2" in at.success[0].value
    store = Store(quality_db)
    config = qc_config(store)
    store.close()
    assert (config.overlap, config.gold_rate, config.attention_rate, config.attention_kinds) == \
        (3, 0.6, 0.05, ["drop_answer"])
