"""Agreement from the krippendorff package, coded position-free, against independent computations."""

import math

import krippendorff
import numpy as np
import pandas as pd
import pytest

from acquisition.agreement import agreement_items, agreement_table, alpha, pairwise_agreement, value_counts


def _labels(rows):
    """(annotator, group, left response, right response, label) -> the label frame."""
    return pd.DataFrame([{"annotator_id": a, "annotator_group": g, "left_response_id": left,
                          "right_response_id": right, "label": label} for a, g, left, right, label in rows])


# four annotators, five items (response pairs), shown in either order; some missing labels
FIXTURE = _labels([
    (1, "g", 10, 11, "left"), (2, "g", 11, 10, "right"), (3, "g", 10, 11, "left"), (4, "g", 10, 11, "tie"),
    (1, "g", 20, 21, "right"), (2, "g", 20, 21, "right"), (3, "g", 21, 20, "left"),
    (1, "g", 30, 31, "tie"), (2, "g", 30, 31, "both_bad"), (4, "g", 31, 30, "left"),
    (2, "g", 40, 41, "left"), (3, "g", 41, 40, "left"), (4, "g", 40, 41, "left"),
    (1, "g", 50, 51, "both_bad"), (3, "g", 50, 51, "both_bad"),
])


def _reliability_matrix(frame):
    """Annotators x items, each cell the category of the response chosen (by its row id, not its
    side), built independently of the code under test."""
    items = sorted({tuple(sorted((r.left_response_id, r.right_response_id))) for r in frame.itertuples()})
    annotators = sorted(frame["annotator_id"].unique())
    matrix = np.full((len(annotators), len(items)), np.nan)
    for r in frame.itertuples():
        item = tuple(sorted((r.left_response_id, r.right_response_id)))
        chosen = {"left": r.left_response_id, "right": r.right_response_id}.get(r.label)
        value = {"tie": 2, "both_bad": 3}.get(r.label, 0 if chosen == item[0] else 1)
        cell = annotators.index(r.annotator_id), items.index(item)
        if np.isnan(matrix[cell]):  # an annotator's first label of an item counts, as documented
            matrix[cell] = value
    return matrix


def test_alpha_equals_the_krippendorff_package_on_a_fixed_fixture():
    expected = krippendorff.alpha(reliability_data=_reliability_matrix(FIXTURE), level_of_measurement="nominal")
    table = agreement_table(FIXTURE, draws=200).set_index("annotator_group")
    assert table.loc["g", "krippendorff_alpha"] == pytest.approx(expected, abs=1e-9)
    assert table.loc["all", "krippendorff_alpha"] == pytest.approx(expected, abs=1e-9)
    assert table.loc["g", "items"] == 5 and table.loc["g", "labels"] == 15
    low, high = table.loc["g", "alpha_ci_low"], table.loc["g", "alpha_ci_high"]
    assert low <= expected <= high and high - low > 0.1  # five items: a wide interval


def test_alpha_is_not_raw_agreement_when_chance_agreement_matters():
    # every annotator mostly picks the first response: raw agreement is high, chance agreement too
    rows = []
    rng = np.random.default_rng(0)
    for item in range(200):
        for annotator in range(3):
            first = rng.random() < 0.85
            rows.append((annotator, "g", 2 * item, 2 * item + 1, "left" if first else "right"))
    counts = value_counts(agreement_items(_labels(rows)))
    raw, a = pairwise_agreement(counts), alpha(counts)
    assert raw > 0.7 and abs(a) < 0.15  # independent choices: alpha near 0, far below raw agreement
    expected = krippendorff.alpha(reliability_data=_reliability_matrix(_labels(rows)), level_of_measurement="nominal")
    assert a == pytest.approx(expected, abs=1e-9)


def test_the_published_nominal_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units, nominal 0.743;
    # categories 1-5 are coded as four pair categories plus one more is impossible here, so feed counts directly
    coders = [[1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
              [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
              [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
              [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]]
    counts = np.zeros((12, 5))
    for coder in coders:
        for unit, v in enumerate(coder):
            if v is not None:
                counts[unit, v - 1] += 1
    counts = counts[counts.sum(axis=1) >= 2]
    assert alpha(counts) == pytest.approx(0.743, abs=5e-4)


def test_edge_cases():
    empty = np.zeros((0, 4))
    assert math.isnan(alpha(empty)) and math.isnan(pairwise_agreement(empty))
    assert alpha(np.array([[2.0, 0, 0, 0], [3.0, 0, 0, 0]])) == 1.0  # one category only
    single = _labels([(1, "g", 1, 2, "left")])
    row = agreement_table(single, draws=10).iloc[0]
    assert row["items"] == 0 and math.isnan(row["krippendorff_alpha"]) and math.isnan(row["alpha_ci_low"])


def test_position_free_coding_agrees_when_the_same_response_wins_on_either_side():
    frame = _labels([(1, "g", 10, 11, "left"), (2, "g", 11, 10, "right")])  # both chose response 10
    items = agreement_items(frame)
    assert items["code"].tolist() == [0, 0]
    assert pairwise_agreement(value_counts(items)) == 1.0


def test_a_simulated_overlap_3_collection_matches_the_package_everywhere_it_is_shown(tmp_path, capsys):
    """The dashboard panel, the dataset card and `qc report` read the same alpha, and it is the
    package's on the position-free reliability matrix of the collection."""
    from collector.app import panels
    from collector.cli import main
    from collector.io.card import build_card
    from collector.io.frames import pairs_frame
    from collector.jobs.simulate import simulate
    from collector.serving.qc_settings import update_qc_config
    from collector.store import Store
    from collector.store.create import init_db

    db = tmp_path / "overlap.db"
    init_db(db, demo=True)
    store = Store(db)
    update_qc_config(store, {"overlap": 3})
    simulate(store, labels=300, annotators=6, seed=4)
    pairs = pairs_frame(store)
    labelled = pairs[pairs["label"].notna()]
    expected = krippendorff.alpha(reliability_data=_reliability_matrix(labelled), level_of_measurement="nominal")
    panel = panels.agreement_summary(panels.load_pairs(db)).set_index("annotator_group").loc["all"]
    assert panel["items"] >= 60 and panel["krippendorff_alpha"] == pytest.approx(expected, abs=1e-9)
    card = build_card(store, pairs)
    assert "## Agreement" in card and f"{expected:.3f}" in card.split("## Agreement")[1]
    store.close()
    assert main(["qc", "report", "--db", str(db)]) == 0
    report = capsys.readouterr().out.split("Agreement on items")[1]
    assert f"{expected:.3f}" in report and "alpha_ci_low" in report
