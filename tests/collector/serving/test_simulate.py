"""Simulated annotators on imported human data: the human preference is the truth."""

import json

import pytest

from collector.benchmarks import HH_RLHF_SAMPLE
from collector.cli import main
from collector.store import Store


def test_simulate_on_imported_hh_rlhf_follows_the_human_labels(tmp_path, capsys):
    db = str(tmp_path / "x.db")
    assert main(["init", "--db", db]) == 0
    assert main(["import", str(HH_RLHF_SAMPLE), "--db", db, "--no-embed"]) == 0
    capsys.readouterr()
    assert main(["simulate", "--db", db, "--labels", "200"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["labels"] == 200
    assert "follow the imported human preferences" in err and "probability 0.1" in err
    store = Store(db)
    try:
        chosen = {(p["chosen_response_id"], p["rejected_response_id"]) for p in store.imported_preferences()}
        agree = decisive = 0
        for label in store.labels():
            pair = store.served_pair(label["served_pair_id"])
            if label["choice"] not in ("left", "right"):
                continue
            win, lose = (("left", "right") if label["choice"] == "left" else ("right", "left"))
            ids = (pair[f"{win}_base_response_id"], pair[f"{lose}_base_response_id"])
            decisive += 1
            agree += ids in chosen
        assert decisive >= 180
        assert agree / decisive == pytest.approx(0.9, abs=0.06)  # 1 - flip_rate
    finally:
        store.close()


def test_simulate_refuses_before_writing_when_it_cannot_judge(tmp_path, capsys):
    db = str(tmp_path / "empty.db")
    assert main(["init", "--db", db]) == 0  # no pool
    assert main(["simulate", "--db", db, "--labels", "5"]) == 1
    assert "no prompt with two responses" in capsys.readouterr().err
    store = Store(db)
    try:
        assert store.counts()["annotators"] == 0 and store.counts()["labels"] == 0
    finally:
        store.close()
