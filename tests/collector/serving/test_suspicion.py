"""The suspicion probe: asked once per annotator after the study's number of labels, stored,
exported with every pair of that annotator, summarised per group in the card and on the page."""

import pytest
from streamlit.testing.v1 import AppTest

from acquisition.core.errors import ConfigError, LabelError
from collector.app import APP_SCRIPT
from collector.io.card import build_card, suspicion_table
from collector.io.frames import pairs_frame
from collector.serving.service import Collector
from collector.serving.study import update_study_config
from collector.store import Store
from collector.store.create import init_db


def _label(collector: Collector, annotator_id: int, n: int) -> None:
    for _ in range(n):
        view = collector.next_pair(annotator_id)
        collector.submit(annotator_id, view.served_pair_id, "left")


def test_the_probe_is_due_once_after_n_labels(store, collector):
    update_study_config(store, {"suspicion_probe_after": 3})
    a, _ = store.add_annotator("a", group="fans")
    b, _ = store.add_annotator("b", group="plain")
    _label(collector, a["id"], 2)
    assert not collector.suspicion_due(a["id"])
    _label(collector, a["id"], 1)
    assert collector.suspicion_due(a["id"]) and not collector.suspicion_due(b["id"])
    with pytest.raises(LabelError, match="one of yes, no, not_sure"):
        collector.answer_suspicion(a["id"], "maybe")
    with pytest.raises(LabelError, match="at most 500"):
        collector.answer_suspicion(a["id"], "yes", "x" * 501)
    assert store.suspicion_answers() == []  # a refused answer writes nothing
    assert collector.answer_suspicion(a["id"], "yes", "every reply started with Great question")
    assert not collector.suspicion_due(a["id"]) and not collector.answer_suspicion(a["id"], "no")
    _label(collector, b["id"], 3)
    collector.answer_suspicion(b["id"], "no")
    answers = store.suspicion_answers()
    assert [(r["annotator_group"], r["looked_edited"], r["labels_before"]) for r in answers] == [
        ("fans", "yes", 3), ("plain", "no", 3)]
    pairs = pairs_frame(store)
    mine = pairs[pairs.annotator_id == a["id"]]
    assert set(mine.annotator_suspected_edit) == {"yes"}
    assert set(mine.annotator_suspicion_note) == {"every reply started with Great question"}
    table = suspicion_table(store).set_index("annotator_group")
    assert table.loc["all", "answered"] == 2 and table.loc["fans", "share_yes"] == 1.0
    assert table.loc["plain", "share_yes"] == 0.0
    card = build_card(store, pairs)
    assert "## Suspicion probe" in card and "Great question" in card.split("## Suspicion probe")[1]


def test_the_setting_is_validated(store):
    with pytest.raises(ConfigError, match="study.suspicion_probe_after: must be a whole number"):
        update_study_config(store, {"suspicion_probe_after": -1})


def test_the_page_asks_once_then_goes_on(tmp_path, monkeypatch):
    db = tmp_path / "probe.db"
    init_db(db, demo=True)
    s = Store(db)
    update_study_config(s, {"suspicion_probe_after": 1})
    annotator, token = s.add_annotator("Probe tester", group="g1")
    s.close()
    monkeypatch.setenv("DECONFOUND_DB", str(db))
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=30)
    at.query_params["token"] = token
    at.run()
    pair = next(c.value for c in at.caption if c.value.startswith("Pair #")).split()[1].lstrip("#")
    at.button(key=f"annotate_left_{pair}").click().run()
    assert not at.exception
    assert any("look edited" in m.value for m in at.markdown)  # the probe, in place of the next pair
    assert not any(c.value.startswith("Pair #") for c in at.caption)
    at.button(key="annotate_probe_submit").click().run()
    assert "Pick an answer to continue." in [e.value for e in at.error]
    at.radio(key="annotate_probe_answer").set_value("yes")
    at.text_input(key="annotate_probe_what").input("the emoji")
    at.button(key="annotate_probe_submit").click().run()
    assert not at.exception and any(c.value.startswith("Pair #") for c in at.caption)
    s = Store(db)
    assert [(r["annotator_id"], r["looked_edited"], r["what"]) for r in s.suspicion_answers()] == [
        (annotator["id"], "yes", "the emoji")]
    s.close()
