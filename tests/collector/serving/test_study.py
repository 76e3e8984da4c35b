"""Study settings: validated, versioned, shown to annotators; every served pair records the
study version and the objective it was shown with; the quota ends labelling."""

import json

import pytest

from acquisition.core.errors import ConfigError, StudyComplete
from collector.serving.qc_settings import update_qc_config
from collector.serving.service import Collector
from collector.serving.study import StudyConfig, study_config, study_version, update_study_config
from collector.store import Store
from collector.store.create import init_db


@pytest.fixture
def store(tmp_path):
    init_db(tmp_path / "s.db", demo=True)
    s = Store(tmp_path / "s.db")
    yield s
    s.close()


def test_settings_are_validated_and_versioned(store):
    assert study_version(store) == 0 and study_config(store) == StudyConfig()
    config, version = update_study_config(store, {"quota": 50, "objective": "Judge which is more harmless"})
    assert version == 1 and study_config(store).quota == 50
    _, version = update_study_config(store, {"group_objectives": {"crowd": "Judge which is more helpful"}})
    assert version == 2 and study_config(store).objective == "Judge which is more harmless"  # merged
    for changes, field in (({"quota": -1}, "quota"), ({"quota": True}, "quota"), ({"title": " "}, "title"),
                           ({"colour": 1}, "colour"), ({"group_objectives": {"g": ""}}, "group_objectives.g"),
                           ({"guidelines": "x" * 30_000}, "guidelines"), ({"completion_message": 3}, "completion_message")):
        with pytest.raises(ConfigError, match=field):
            update_study_config(store, changes)
    assert study_version(store) == 2  # nothing written by a refused change


def test_each_served_pair_records_the_objective_it_was_shown_with(store):
    update_study_config(store, {"objective": "Judge which is more harmless",
                                "group_objectives": {"crowd": "Judge which is more helpful"}})
    plain, _ = store.add_annotator("plain")
    crowd, _ = store.add_annotator("crowd member", group="crowd")
    own, _ = store.add_annotator("own", group="crowd", objective="Judge which is more honest")
    collector = Collector(store, seed=0)
    shown = {}
    for annotator in (plain, crowd, own):
        view = collector.next_pair(annotator["id"])
        row = store.served_pair(view.served_pair_id)
        assert row["study_version"] == 1 and row["objective"] == view.objective
        shown[annotator["name"]] = view.objective
    assert shown == {"plain": "Judge which is more harmless", "crowd member": "Judge which is more helpful",
                     "own": "Judge which is more honest"}
    # the export carries both columns
    from collector.io.frames import pairs_frame
    frame = pairs_frame(store)
    assert list(frame["objective"]) == list(shown.values()) and set(frame["study_version"]) == {1}


def test_repeats_record_the_objective_of_the_annotator_who_sees_them(store):
    update_qc_config(store, {"overlap": 2})
    update_study_config(store, {"group_objectives": {"a": "Objective A", "b": "Objective B"}})
    first, _ = store.add_annotator("first", group="a")
    second, _ = store.add_annotator("second", group="b")
    collector = Collector(store, seed=0)
    pair = collector.next_pair(first["id"]).served_pair_id
    collector.submit(first["id"], pair, "left")
    repeat = store.served_pair(collector.next_pair(second["id"]).served_pair_id)
    assert repeat["qc_kind"] == "repeat" and repeat["objective"] == "Objective B"


def test_the_quota_ends_labelling_with_the_completion_message(store):
    update_study_config(store, {"quota": 3, "completion_message": "All done, thank you.",
                                "completion_code": "C0DE42"})
    annotator, _ = store.add_annotator("worker")
    collector = Collector(store, seed=0)
    for _ in range(3):
        collector.submit(annotator["id"], collector.next_pair(annotator["id"]).served_pair_id, "left")
    served = store.counts()["served_pairs"]
    with pytest.raises(StudyComplete, match="All done") as info:
        collector.next_pair(annotator["id"])
    assert info.value.code == "C0DE42"
    assert store.counts()["served_pairs"] == served and collector.progress(annotator["id"]) == 3
    update_study_config(store, {"quota": 4})  # raising the quota lets them go on
    assert collector.next_pair(annotator["id"]).served_pair_id


def test_cli_study_show_and_set(tmp_path, capsys):
    from collector.cli import main

    db = str(tmp_path / "c.db")
    assert main(["init", "--db", db]) == 0
    assert main(["study", "set", "quota=50", 'objective="Judge which response is more harmless"', "--db", db]) == 0
    capsys.readouterr()
    assert main(["study", "show", "--db", db]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["quota"] == 50 and shown["version"] == 1
    assert main(["study", "set", "quota=-3", "--db", db]) == 1
    assert "study.quota" in capsys.readouterr().err
    (tmp_path / "study.toml").write_text('[study]\ntitle = "Harmlessness study"\nquota = 20\n')
    assert main(["study", "set", "--file", str(tmp_path / "study.toml"), "--db", db]) == 0
    assert main(["audit", "--db", db]) == 0
    assert capsys.readouterr().out.count("study changed") == 2

