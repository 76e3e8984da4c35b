import numpy as np
import pytest

from acquisition.balance import balance_report, chosen_rejected_smd, smd
from acquisition.editors import DEFAULT_ATTRIBUTES, EDITORS
from collector.io.frames import pairs_frame, trl_frame
from collector.jobs.simulate import simulate
from collector.store import Store


def test_smd_basics():
    assert smd(np.array([1, 1, 0, 0]), np.array([1, 1, 0, 0])) == 0
    assert smd(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 2.0])) == pytest.approx(1.0)


@pytest.mark.slow
def test_randomised_attributes_keep_every_attribute_balanced_over_2000_labels(store):
    simulate(store, labels=2000, annotators=6, groups=["a", "b"], seed=11)
    table = chosen_rejected_smd(trl_frame(pairs_frame(store))).set_index("attribute")

    def bound(n: int) -> float:  # |SMD| < 0.1, or three standard errors where fewer pairs apply (lists: ~200)
        return max(0.1, 3 * (2 / n) ** 0.5)

    for attribute in DEFAULT_ATTRIBUTES:
        assert table.loc[attribute, "n"] > 100 and abs(table.loc[attribute, "smd"]) < bound(table.loc[attribute, "n"]), table
    report = balance_report(pairs_frame(store))
    overall = report[report["stratum"] == "all"].set_index("attribute")
    for attribute in DEFAULT_ATTRIBUTES:
        assert abs(overall.loc[attribute, "smd"]) < bound(overall.loc[attribute, "n"])


def test_observational_pool_where_an_attribute_tracks_quality_is_not_balanced():
    list_editor = EDITORS["list_format"]
    store = Store(":memory:")
    records = []
    for i in range(60):
        good = f"Answer {i} explains the idea clearly. The key reason is given next. A short example ends the answer."
        bad = f"Answer {i} is vague about the idea. The reason is skipped entirely. No example is given at all."
        # the better response carries a bullet list 90% of the time, as in observational data
        if i % 10:
            good = list_editor.apply(good, i)
        else:
            bad = list_editor.apply(bad, i)
        records.append({"prompt": f"Question {i}?", "responses": [{"text": good, "quality": 4.0},
                                                                   {"text": bad, "quality": 2.0}]})
    store.add_pool(records, source="test")
    store.activate_policy("observational", {})
    simulate(store, labels=2000, seed=5)
    table = chosen_rejected_smd(trl_frame(pairs_frame(store))).set_index("attribute")
    assert table.loc["list_format", "smd"] > 0.5
    store.close()


def test_positive_control_shows_up_as_a_real_effect(store):
    store.activate_policy("randomised_attributes", {"attributes": ["drop_answer", "bold"], "probability": 0.5})
    simulate(store, labels=800, seed=2)
    table = chosen_rejected_smd(trl_frame(pairs_frame(store))).set_index("attribute")
    assert table.loc["drop_answer", "smd"] < -0.3
    assert abs(table.loc["bold", "smd"]) < 0.15


def test_arm_balance_compares_each_arm_with_the_observational_one(store):
    from acquisition.balance import arm_balance, pair_families
    store.activate_policy("mixture", {"components": [
        {"name": "observational", "weight": 0.5},
        {"name": "randomised_attributes", "weight": 0.5, "config": {"attributes": ["emoji"]}},
    ]})
    simulate(store, labels=600, annotators=4, groups=["a", "b"], seed=2)
    pairs = pairs_frame(store)
    # each pair is filed by the family it recorded when drawn, never by its arm name
    assert set(pair_families(pairs)) == {"observational", "randomised_attributes"}
    assert set(pair_families(pairs.drop(columns="family"))) == {"unknown"}
    table = arm_balance(pairs)
    assert set(table["reference"]) == {"observational"}
    assert set(table["arm"]) == {"randomised_attributes"}
    overall = table[table.stratum == "all"].set_index("covariate")
    # the randomised arm adds emoji to half its responses; the demo pool has none of its own
    assert overall.loc["emoji", "smd"] > 0.5
    # both arms draw base responses the same way: no attribute the arm does not touch differs
    assert abs(overall.loc["list_format", "smd"]) < 0.15
    assert {"stratum", "n_arm", "n_reference"} <= set(table.columns)
    assert set(table.stratum) == {"all", "annotator_group=a", "annotator_group=b"}


def test_quality_control_items_are_left_out_of_balance(store):
    from acquisition.balance import arm_balance
    simulate(store, labels=200, annotators=2, seed=4)
    pairs = pairs_frame(store)
    before = balance_report(pairs)
    # mark some pairs as attention checks whose left side always carries bold: they must not count
    marked = pairs.copy()
    counted = int((pairs.loc[pairs.index[:60], "left_bold"].notna() & pairs.loc[pairs.index[:60], "right_bold"].notna()).sum())
    assert counted > 10
    marked.loc[marked.index[:60], "qc_kind"] = "attention"
    marked.loc[marked.index[:60], "left_bold"] = True
    marked.loc[marked.index[:60], "right_bold"] = False
    after = balance_report(marked)
    n_all = after[(after.stratum == "all") & (after.attribute == "bold")]["n"].iloc[0]
    assert n_all == before[(before.stratum == "all") & (before.attribute == "bold")]["n"].iloc[0] - counted
    assert set(arm_balance(marked).columns) >= {"arm", "covariate"}


def _confounded_hedge_pool() -> list[dict]:
    """Better responses carry a natural hedge ("I think ...") 90% of the time, worse ones 10%."""
    records = []
    for i in range(80):
        good = f"The kettle {i} needs descaling every month. White vinegar works well for it. Rinse it twice after."
        bad = f"The kettle {i} never needs cleaning at all. Any soap will do for it. Do not rinse it afterwards."
        hedge = "I think the"
        if i % 10:
            good = good.replace("The", hedge, 1)
        else:
            bad = bad.replace("The", hedge, 1)
        records.append({"prompt": f"How do I look after kettle {i}?",
                        "responses": [{"text": good, "quality": 4.0}, {"text": bad, "quality": 2.0}]})
    return records


def _better_worse_smd(pairs, attribute):
    better_left = pairs["left_base_response_id"] < pairs["right_base_response_id"]  # the better one is added first
    left, right = pairs[f"left_{attribute}"].astype(float), pairs[f"right_{attribute}"].astype(float)
    better = left.where(better_left, right)
    worse = right.where(better_left, left)
    keep = better.notna() & worse.notna()
    return smd(better[keep].to_numpy(), worse[keep].to_numpy())


def test_a_natural_confound_is_broken_by_two_way_edits_and_kept_by_one_way_ones(monkeypatch):
    """The issue's check: on a pool whose better responses naturally carry an attribute 90% of
    the time, the realised attribute is balanced between better and worse responses under
    randomised_attributes, where an editor that can only add leaves the natural imbalance."""
    from acquisition.editors.phrasing import Hedging

    def run() -> float:
        store = Store(":memory:")
        store.add_pool(_confounded_hedge_pool(), source="test")
        store.activate_policy("randomised_attributes", {"attributes": ["hedging"], "probability": 0.5})
        simulate(store, labels=800, seed=4)
        pairs = pairs_frame(store)
        store.close()
        return _better_worse_smd(pairs, "hedging")

    two_way = run()
    assert abs(two_way) < 0.1, two_way
    monkeypatch.setattr(Hedging, "remove", lambda self, text: text)  # the old one-way editor
    monkeypatch.setattr(Hedging, "applies", lambda self, text: True)
    one_way = run()
    assert one_way > 0.5, one_way
