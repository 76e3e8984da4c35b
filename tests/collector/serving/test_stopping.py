"""Stopping by rule: once every named attribute is resolved by its confidence sequence (or at a
maximum number of labels) the stop is recorded once, audited, shown, and exported in the card;
annotators then see the completion message; changing the rule reopens the study."""

from __future__ import annotations

import json

import pytest

from acquisition.core.errors import ConfigError, StudyComplete
from collector.io.card import stopping_section
from collector.jobs.simulate import SimulatedAnnotatorConfig, simulate
from collector.jobs.worker import StopRuleCheck
from collector.serving.service import Collector
from collector.serving.stopping import check_stopping
from collector.serving.study import stopped, update_study_config
from collector.store import Store
from collector.store.create import init_db


@pytest.fixture
def study(tmp_path):
    init_db(tmp_path / "d.db", demo=True)
    store = Store(tmp_path / "d.db")
    yield store
    store.close()


def test_a_resolved_attribute_stops_the_study_once_audited_shown_and_in_the_card(study):
    update_study_config(study, {"stop_when_resolved": ["bold"]})
    assert not check_stopping(study).stopped  # nothing labelled yet
    simulate(study, labels=600, annotators=20, seed=3, config=SimulatedAnnotatorConfig(attribute_effects={"bold": 3.0}))
    state = check_stopping(study)
    assert state.stopped and state.resolved == {"bold": "non-zero"} and "resolved" in state.reason
    low, high = state.sequences["bold"]
    assert low > 0  # a strong preference for bold: the sequence excludes 0 from above
    record = stopped(study)
    assert record is not None and record["labels"] == state.labels == 600
    assert [r["action"] for r in study.audit_log()].count("study stopped by rule") == 1
    check_stopping(study)  # already stopped: nothing recorded twice
    assert [r["action"] for r in study.audit_log()].count("study stopped by rule") == 1
    annotator, _ = study.add_annotator("late")
    with pytest.raises(StudyComplete):
        Collector(study, seed=0).next_pair(annotator["id"])
    card = stopping_section(study)
    assert "stopped by design at 600 labels" in card and "`bold`" in card
    # a new rule (a new study version) reopens the study until it is met
    update_study_config(study, {"stop_when_resolved": ["bold", "list_format"], "stop_rope": 0.02})
    assert not check_stopping(study).stopped and stopped(study) is None
    assert Collector(study, seed=0).next_pair(annotator["id"]).served_pair_id


def test_max_labels_stops_and_the_worker_checks_every_50_labels(study, tmp_path, monkeypatch):
    import collector.serving.stopping as stopping

    update_study_config(study, {"max_labels": 120})
    calls = []
    real = stopping.check_stopping
    monkeypatch.setattr(stopping, "check_stopping", lambda store: calls.append(store.label_count()) or real(store))
    check = StopRuleCheck(tmp_path / "d.db", log=lambda line: None)
    check()  # the first look
    simulate(study, labels=30, seed=1)
    check()  # 30 more: not yet
    simulate(study, labels=30, seed=2)
    check()  # 60 since the last look
    simulate(study, labels=70, seed=4)
    check()  # past max_labels
    assert calls == [0, 60, 130]
    assert stopped(study)["reason"] == "reached max_labels (120 labels)"


def test_a_bad_rule_is_refused_and_writes_nothing(study):
    for changes, words in [({"stop_rope": 1.5}, "stop_rope"), ({"stop_when_resolved": ["bold", "bold"]}, "once"),
                           ({"max_labels": -1}, "max_labels"), ({"stop_when_resolved": "bold"}, "list")]:
        before = study.get_meta("study_version")
        with pytest.raises(ConfigError, match=words):
            update_study_config(study, changes)
        assert study.get_meta("study_version") == before
    assert json.loads(study.get_meta("study_config") or "{}").get("stop_rope") in (None, 0.0)
