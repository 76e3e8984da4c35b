import json
import re

import pandas as pd
import pytest

from acquisition.effects import amce
from collector.io.card import build_card, markdown_table
from collector.io.frames import pairs_frame
from collector.io.importers import import_file
from collector.jobs.simulate import SimulatedAnnotatorConfig, simulate
from collector.store import Store


def section(card: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", card, re.S | re.M)
    assert match, f"no section {heading!r}"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("| ") and not line.startswith("| ---")]


@pytest.fixture
def two_policies(store):
    config = SimulatedAnnotatorConfig(group_effects={"a": {"bold": 1.5}})
    simulate(store, labels=200, annotators=4, groups=["a", "b"], seed=2, config=config)
    store.activate_policy("observational", {})
    simulate(store, labels=60, annotators=2, groups=["a", "b"], seed=3, config=config)
    return store


def test_card_states_policies_arms_counts_and_groups(two_policies):
    card = build_card(two_policies, pairs_frame(two_policies), fmt="trl", export_name="out.jsonl", rows=123)
    assert card.startswith("# Dataset card: out.jsonl")
    assert "Format `trl`, 123 rows" in card
    policies = table_rows(section(card, "Policies and versions"))
    assert policies[0][:2] == ["version", "policy"]
    assert [r[:2] + r[3:] for r in policies[1:]] == [["1", "randomised_attributes", "", "200", "200"],
                                                    ["2", "observational", "yes", "60", "60"]]
    assert '"probability": 0.5' in section(card, "Policies and versions")
    arms = table_rows(section(card, "Arms and propensities").split("Every arm")[0])  # the families' table
    every_arm = section(card, "Arms and propensities").split("Every arm")[1]  # few arms: each listed
    assert "L:bold+list_format\\|R:" in every_arm
    families = {(r[0], r[2]): r for r in arms[1:]}
    assert set(families) == {("randomised_attributes", "randomised_attributes"), ("observational", "observational")}
    assert families[("randomised_attributes", "randomised_attributes")][3] == "200"
    counts = dict(table_rows(section(card, "Counts"))[1:])
    assert counts["served pairs"] == "260" and counts["labelled"] == "260"
    labels = pd.DataFrame(two_policies.labels())["choice"].value_counts()
    assert counts["labels: tie"] == str(labels.get("tie", 0))
    groups = table_rows(section(card, "Annotator groups"))
    per_group = pd.DataFrame(two_policies.annotators())["group_name"].value_counts()
    assert [(r[0], r[1], r[5]) for r in groups[1:]] == [
        ("a", str(per_group["a"]), "130"), ("b", str(per_group["b"]), "130")]


def test_card_amce_table_is_the_estimators(two_policies):
    card = build_card(two_policies, pairs_frame(two_policies))
    text = section(card, "Attribute effects (AMCE)")
    rows = table_rows(text.split("By annotator group:")[1].split("By prompt type:")[0])
    assert rows[0] == ["annotator_group", "attribute", "estimate", "se", "ci95", "n_labels", "method"]
    want = amce(pairs_frame(two_policies), by=("annotator_group",))
    assert len(rows) - 1 == len(want) > 0
    for row, (_, w) in zip(rows[1:], want.iterrows()):
        assert row[:3] == [w["annotator_group"], w["attribute"], f"{w['estimate']:+.3f}"]
        assert row[4] == f"[{w['ci_low']:+.3f}, {w['ci_high']:+.3f}]" and row[5] == str(w["n_labels"])
    # only the randomised arm identifies effects: 200 labels at most, not 260; fewer for an
    # attribute that does not apply to every response (the pairs where it applies to both)
    overall = table_rows(text.split("All annotators:")[1].split("By annotator group:")[0])
    counts = [int(r[4]) for r in overall[1:]]
    assert max(counts) <= 200 and min(counts) > 0


def test_card_lists_excluded_labels_and_why(two_policies):
    pairs = pairs_frame(two_policies)
    flagged = pairs["annotator_id"] == pairs["annotator_id"].iloc[0]
    pairs = pairs.assign(excluded=flagged, excluded_reason=flagged.map({True: "failed gold pairs", False: None}))
    text = section(build_card(two_policies, pairs, fmt="arena"), "Excluded labels")
    assert "skipped and unlabelled pairs are not in an Arena export" in text
    assert f"{int(flagged.sum())} labels are excluded" in text
    assert table_rows(text)[1] == ["failed gold pairs", str(int(flagged.sum())), "1"]
    text = section(build_card(two_policies, pairs.assign(excluded=False)), "Excluded labels")
    assert "No annotator's labels are excluded." in text


def test_card_describes_imported_data_and_an_empty_collection(tmp_path):
    store = Store(":memory:")
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps({
        "question_id": f"q{i}", "model_a": "x", "model_b": "y", "winner": w,
        "conversation_a": [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": "A"}],
        "conversation_b": [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": "B"}],
    }) for i, w in enumerate(["model_a", "tie", "model_b"])))
    import_file(store, path)
    card = build_card(store, pairs_frame(store), fmt="pairs")
    assert table_rows(section(card, "Imported data"))[1] == ["a.jsonl", "arena", "3", "1", "3"]
    assert "No pair has been served." in section(card, "Arms and propensities")
    assert "No labels yet." in section(card, "Attribute effects (AMCE)")
    assert "No policy has been activated." in section(card, "Policies and versions")


def test_markdown_table_escapes_cells():
    table = markdown_table(pd.DataFrame({"a": ["x|y", "two\nlines"], "b": [0.12345, float("nan")]}))
    assert table.splitlines() == ["| a | b |", "| --- | --- |", "| x\\|y | 0.123 |", "| two lines |  |"]


def test_card_balance_matches_acquisition_balance(two_policies):
    from acquisition.balance import balance_report, chosen_rejected_smd
    from collector.io.frames import trl_frame

    text = section(build_card(two_policies, pairs_frame(two_policies)), "Balance")
    first, second = text.split("SMD between left and right")
    chosen = {r[0]: r for r in table_rows(first)[1:]}
    want = chosen_rejected_smd(trl_frame(pairs_frame(two_policies))).set_index("attribute")
    assert chosen and set(chosen) == set(want.index[want["n"] > 0])
    for attribute, row in chosen.items():
        assert row[1] == f"{want.loc[attribute, 'smd']:.3f}" and row[2] == str(want.loc[attribute, "n"])
    rows = table_rows(second)
    header, body = rows[0], {r[0]: r for r in rows[1:]}
    report = balance_report(pairs_frame(two_policies)).pivot(index="attribute", columns="stratum", values="smd")
    assert header[1] == "all" and set(header[1:]) == set(report.columns)
    for attribute, row in body.items():
        for stratum, cell in zip(header[1:], row[1:]):
            value = report.loc[attribute, stratum]
            assert cell == ("" if pd.isna(value) else f"{value:.3f}"), (attribute, stratum)


def test_excluding_an_annotator_shows_in_the_card_and_leaves_the_exports(two_policies, tmp_path):
    from collector.io.frames import arena_frame, trl_frame
    from collector.jobs.annotator_quality import exclude_annotator

    victim = two_policies.annotators()[0]
    n_labels = two_policies.label_count(victim["id"])
    before_trl, before_arena = len(trl_frame(pairs_frame(two_policies))), len(arena_frame(pairs_frame(two_policies)))
    exclude_annotator(two_policies, victim["id"], "gold accuracy 0.40")
    text = section(build_card(two_policies, pairs_frame(two_policies), fmt="trl"), "Excluded labels")
    assert f"{n_labels} labels are excluded" in text
    assert table_rows(text)[1] == ["gold accuracy 0.40", str(n_labels), "1"]
    assert len(arena_frame(pairs_frame(two_policies))) == before_arena - n_labels
    assert len(trl_frame(pairs_frame(two_policies))) < before_trl
