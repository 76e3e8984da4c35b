from collections import Counter

import numpy as np
import pytest

from acquisition.core.config import loads_toml
from acquisition.core.errors import ConfigError
from acquisition.core.records import EditVector
from acquisition.design import DesignScores
from acquisition.policies import (
    POLICIES,
    AnnotatorContext,
    build_policy,
    parse_policy_config,
    parse_policy_document,
)
from collector.store import Store

# small configs so every outcome can be enumerated by sampling
SMALL = {
    "randomised_attributes": {"attributes": ["bold", "emoji"], "probability": 0.3},
    "counterfactual_pairs": {"attributes": ["bold", "emoji"]},
    "active": {"attributes": ["bold"], "probability": 0.3, "uniform_share": 0.3},
    "assignment_randomisation": {"observational_share": 0.4},
    "overlap_targeting": {"attributes": ["bold"], "uniform_share": 0.3},
    "mixture": {"components": [
        {"name": "randomised_attributes", "weight": 0.5, "config": {"attributes": ["bold"], "probability": 0.3}},
        {"name": "observational", "weight": 0.3},
        {"name": "counterfactual_pairs", "weight": 0.2, "config": {"attributes": ["bold"]}},
    ]},
}


@pytest.fixture
def tiny_pool():
    s = Store(":memory:")
    s.add_pool([
        # bold applies to the long replies that repeat a term, emoji to every one of eight words or more
        {"prompt": "P1?", "responses": [
            {"text": "Water the garden early in the morning, before work. The garden soil then stays moist through the "
                     "long heat of the summer day."},
            {"text": "Gamma three is the answer here. Delta four is the other one."}]},
        {"prompt": "P2?", "responses": [
            {"text": "Epsilon five comes first in the list. Zeta six comes right after it."},
            {"text": "Eta seven is the next number. Theta eight follows it closely."},
            {"text": "Kappa ten is the number to remember here. Kappa ten comes right after iota nine in the Greek "
                     "alphabet, as every student learns."}]},
        {"prompt": "P3 has one response only?", "responses": [{"text": "Lonely answer here."}]},
    ], source="test")
    yield s.pool_snapshot()
    s.close()


def outcome(p):
    def side(s):  # the record as served: which attributes were drawn, and which came out on
        return (s.base_response_id, tuple(sorted(a for a, e in s.edit_vector.items() if e["on"])),
                tuple(sorted(s.edit_vector)))
    return (p.prompt_id, side(p.left), side(p.right))


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_policy_contract(name, tiny_pool):
    policy = build_policy(name, SMALL.get(name, {}), tiny_pool)
    rng = np.random.default_rng(0)
    annotator = AnnotatorContext(1, "g")
    n = 30000
    seen, counts, swaps = {}, Counter(), 0
    for _ in range(n):
        p = policy.propose(annotator, rng)
        assert p.prompt_id in (1, 2)  # the single-response prompt is never served
        assert 0 < p.propensity_score <= 1
        key = outcome(p)
        assert key[1] != key[2]
        seen.setdefault(key, p.propensity_score)
        assert seen[key] == pytest.approx(p.propensity_score)
        counts[key] += 1
        swaps += p.position_swapped
    # every possible outcome was seen, so the propensities must sum to exactly one
    assert sum(seen.values()) == pytest.approx(1.0, abs=1e-9)
    for key, prop in seen.items():
        assert counts[key] / n == pytest.approx(prop, abs=4 * (prop / n) ** 0.5 + 1e-3)
    assert abs(swaps / n - 0.5) < 0.02


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_policy_is_deterministic_under_a_seed(name, tiny_pool):
    policy = build_policy(name, SMALL.get(name, {}), tiny_pool)
    a = [policy.propose(AnnotatorContext(1), np.random.default_rng(7)) for _ in range(3)]
    b = [policy.propose(AnnotatorContext(1), np.random.default_rng(7)) for _ in range(3)]
    assert a == b


def test_randomised_attributes_propensity_is_the_product_of_its_draws(tiny_pool):
    policy = build_policy("randomised_attributes", {"attributes": ["bold"], "probability": 0.2}, tiny_pool)
    p = policy.propose(AnnotatorContext(1), np.random.default_rng(3))
    on = [p.left.edit_vector["bold"]["on"], p.right.edit_vector["bold"]["on"]]
    arm = 0.5 * np.prod([0.2 if o else 0.8 for o in on])
    assert p.arm_propensity == pytest.approx(arm)
    pair = 1 / 2 * 1 if p.prompt_id == 1 else 1 / 2 * 1 / 3
    assert p.propensity_score == pytest.approx(arm * pair)


@pytest.mark.parametrize("config,field", [
    ({"probability": 1.0}, "config.probability"),
    ({"probability": "half"}, "config.probability"),
    ({"attributes": ["sparkles"]}, "config.attributes[0]"),
    ({"probabilities": {"bold": 0.0}, "attributes": ["bold"]}, "config.probabilities.bold"),
    ({"colour": "red"}, "unknown key 'colour'"),
])
def test_bad_config_names_the_field(config, field):
    with pytest.raises(ConfigError) as err:
        parse_policy_config("randomised_attributes", config)
    assert field in str(err.value)


def test_policy_document_from_toml():
    doc = loads_toml('name = "randomised_attributes"\n[config]\nprobability = 0.3\nattributes = ["bold"]\n')
    name, config = parse_policy_document(doc, "f.toml")
    assert name == "randomised_attributes" and config.probability == 0.3
    with pytest.raises(ConfigError, match="unknown policy .nope.*known: .*observational"):
        parse_policy_document({"name": "nope"}, "f.toml")
    with pytest.raises(ConfigError, match="f.toml: not valid TOML"):
        loads_toml("name = ", "f.toml")


def test_empty_pool_gives_a_clear_error():
    s = Store(":memory:")
    with pytest.raises(ConfigError, match="no prompt with two responses"):
        build_policy("observational", {}, s.pool_snapshot())


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_propensity_of_agrees_with_propose(name, tiny_pool):
    policy = build_policy(name, SMALL.get(name, {}), tiny_pool)
    rng = np.random.default_rng(4)
    for _ in range(200):
        p = policy.propose(AnnotatorContext(1), rng)
        score, arm = policy.propensity_of(AnnotatorContext(1), p.prompt_id, p.left, p.right)
        assert score == pytest.approx(p.propensity_score) and arm == pytest.approx(p.arm_propensity)


def test_mixture_config_errors_name_the_component():
    with pytest.raises(ConfigError, match=r"components\[1\].weight: must be a positive finite number"):
        parse_policy_config("mixture", {"components": [{"name": "observational", "weight": 1.0},
                                                       {"name": "observational", "weight": 0.0}]})
    with pytest.raises(ConfigError, match=r"components\[0\].config.probability"):
        parse_policy_config("mixture", {"components": [
            {"name": "randomised_attributes", "weight": 1.0, "config": {"probability": 2.0}}]})


def test_active_concentrates_where_the_model_disagrees_and_keeps_the_floor(tiny_pool):
    from acquisition.policies.active import AcquisitionScores

    # prompt 2 has pairs (3,4), (3,5), (4,5); the model disagrees most about (4,5)
    scores = AcquisitionScores("v1", {(1, 1, 2): 0.01, (2, 3, 4): 0.01, (2, 3, 5): 0.01, (2, 4, 5): 0.5})
    policy = build_policy("active", {"uniform_share": 0.2, "attributes": ["bold"]}, tiny_pool,
                          acquisition_scores=scores)
    table = policy.candidate_table()
    assert (table["probability"] >= table["floor"] - 1e-12).all()
    assert table["floor"].min() > 0
    rng = np.random.default_rng(0)
    served = Counter()
    for _ in range(4000):
        p = policy.propose(AnnotatorContext(1), rng)
        served[tuple(sorted((p.left.base_response_id, p.right.base_response_id)))] += 1
        assert p.model_version == "v1" and p.acquisition_score is not None
    share = served[(4, 5)] / 4000
    uniform_share = 1 / 2 * 1 / 3  # what uniform sampling would give this pair
    assert share > 3 * uniform_share
    assert min(served.values()) / 4000 >= 0.9 * table["floor"].min()


def test_assignment_randomisation_follows_history_in_its_observational_arm(tiny_pool):
    history = {1: 0, 2: 1}
    policy = build_policy("assignment_randomisation", {"observational_share": 0.5}, tiny_pool,
                          served_count=lambda annotator_id: history[annotator_id])
    rng = np.random.default_rng(0)
    for annotator, expected_prompt in ((1, 1), (2, 2)):
        prompts = Counter(policy.propose(AnnotatorContext(annotator), rng).prompt_id for _ in range(4000))
        # 0.5 pool order + 0.5 uniform over the two servable prompts
        assert prompts[expected_prompt] / 4000 == pytest.approx(0.75, abs=0.03)


def test_active_eubo_edits_have_exact_propensities_and_follow_the_gp(tiny_pool):
    # design space over two attributes: 4 points, 6 pairs; EUBO favours pair ({}, {bold})
    scores = np.array([5.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    policy = build_policy("active", {"attributes": ["bold", "emoji"], "uniform_share": 0.3},
                          tiny_pool, design_scores=DesignScores(["bold", "emoji"], scores))
    assert len(policy.design_pairs) == 6
    top = set(policy.design_pairs[int(np.argmax(scores))])
    rng = np.random.default_rng(1)
    n, seen, counts, top_hits = 30000, {}, Counter(), 0
    for _ in range(n):
        p = policy.propose(AnnotatorContext(1), rng)
        key = outcome(p)
        seen.setdefault(key, p.propensity_score)
        assert seen[key] == pytest.approx(p.propensity_score)
        counts[key] += 1
        on = {frozenset(key[1][1]), frozenset(key[2][1])}
        top_hits += on == top
    assert sum(seen.values()) == pytest.approx(1.0, abs=1e-9)
    for key, prop in seen.items():
        assert counts[key] / n == pytest.approx(prop, abs=4 * (prop / n) ** 0.5 + 1e-3)
    # without EUBO the favoured edit pair has probability 2 * (1/4 * 1/4) = 0.125
    assert top_hits / n > 0.4


def _cells(rows):
    """A stand-in for Store.labelled_cells_since over fixed label rows."""
    def since(last):
        return [r for r in rows if r["label_id"] > last]
    return since


def _label_row(i, group, ptype, left_on, right_on):
    def ev(on):
        return EditVector({"bold": {"on": on, "editor": "bold", "seed": 1}})  # as the store hands it over
    return {"label_id": i, "annotator_group": group, "task_type": ptype, "left_base_response_id": 1,
            "right_base_response_id": 2, "left_edit_vector": ev(left_on), "right_edit_vector": ev(right_on)}


@pytest.mark.slow
def test_overlap_targeting_oversamples_rare_cells_with_exact_propensities(tiny_pool):
    # group g has 40 labelled profiles without bold and none with it
    rows = [_label_row(i + 1, "g", "general", False, False) for i in range(20)]
    policy = build_policy("overlap_targeting", {"attributes": ["bold"], "uniform_share": 0.2, "strength": 1.0},
                          tiny_pool, label_cells=_cells(rows))
    probs = policy.combo_probabilities("g", "general")
    combos = ["+".join(sorted(c)) or "none" for c in policy.combos]
    p_bold = probs[combos.index("bold")]
    # weights 1/41 vs 1/1: bold gets (0.8 * 41/42 + 0.1)
    assert p_bold == pytest.approx(0.8 * (1 / 1) / (1 / 1 + 1 / 41) + 0.1)
    assert probs.min() >= 0.2 / 2
    # another group has no history: uniform for it
    assert policy.combo_probabilities("h", "general") == pytest.approx([0.5, 0.5])
    rng = np.random.default_rng(3)
    seen, counts, n = {}, Counter(), 20000
    for _ in range(n):
        p = policy.propose(AnnotatorContext(1, "g"), rng)
        key = outcome(p)
        seen.setdefault(key, p.propensity_score)
        counts[key] += 1
        assert policy.propensity_of(AnnotatorContext(1, "g"), p.prompt_id, p.left, p.right)[0] == \
            pytest.approx(p.propensity_score)
    assert sum(seen.values()) == pytest.approx(1.0, abs=1e-9)
    for key, prop in seen.items():
        assert counts[key] / n == pytest.approx(prop, abs=4 * np.sqrt(prop * (1 - prop) / n) + 1e-3)
    # new labels move the probabilities only when prepare() reads them
    rows += [_label_row(100 + i, "g", "general", True, True) for i in range(200)]
    assert policy.combo_probabilities("g", "general") == pytest.approx(probs)
    policy.prepare()
    assert policy.combo_probabilities("g", "general")[combos.index("bold")] < 0.5


def test_overlap_targeting_fills_what_an_observational_phase_left_empty(store):
    from collector.jobs.simulate import simulate
    store.activate_policy("observational", {})
    simulate(store, labels=150, annotators=3, seed=1)
    store.activate_policy("overlap_targeting", {"attributes": ["bold", "emoji"], "uniform_share": 0.1})
    simulate(store, labels=300, annotators=3, seed=2)
    rows = store.served_pair_log()
    served = Counter()
    for r in rows:
        if r["policy_name"] != "overlap_targeting":
            continue
        for side in ("left", "right"):
            on = tuple(sorted(r[f"{side}_edit_vector"].on_set()))
            served[on] += 1
    # the observational phase labelled only attribute-free profiles; overlap targeting
    # serves each of the three empty combinations more often than the crowded one
    for combo in (("bold",), ("emoji",), ("bold", "emoji")):
        assert served[combo] > served[()], served


def test_counterfactual_pairs_contrast_only_an_attribute_that_applies(tiny_pool):
    """A minimal pair over an attribute that cannot be switched on its response would show one
    text twice: the policy draws only attributes that apply to the drawn response."""
    from acquisition.editors import EDITORS, apply_edit_vector

    policy = build_policy("counterfactual_pairs", {"attributes": ["bold", "emoji"]}, tiny_pool)
    rng = np.random.default_rng(3)
    arms = Counter()
    for _ in range(400):
        p = policy.propose(AnnotatorContext(1, "g"), rng)
        (attribute,) = p.left.edit_vector
        text = tiny_pool.response_text[p.left.base_response_id]
        assert EDITORS[attribute].applies(text)
        shown = {apply_edit_vector(text, side.edit_vector)[0] for side in (p.left, p.right)}
        assert len(shown) == 2
        arms[attribute] += 1
    assert set(arms) == {"bold", "emoji"}  # bold where it fits, emoji elsewhere too


def _active_store(prompts: int = 30, responses: int = 4) -> Store:
    s = Store(":memory:")
    s.add_pool([{"prompt": f"Question {i}?", "responses": [
        {"text": f"Answer {j} to question {i}, one of several plain replies."} for j in range(responses)]}
        for i in range(prompts)], source="test")
    return s


def test_active_logged_probabilities_match_its_draw_frequencies_with_labelled_pairs_excluded():
    """20,000 draws from one state of the policy (40 pairs already served and labelled through
    the product, heavy-tailed weights from the worker): each base pair's frequency matches the
    probability logged with it, and a labelled pair is never drawn."""
    from acquisition.policies.active import AcquisitionScores, base_pairs
    from collector.serving.service import Collector

    store = _active_store()
    store.activate_policy("active", {"attributes": ["bold"], "design_acquisition": "none", "uniform_share": 0.1})
    collector = Collector(store, seed=0)
    annotator, _ = store.add_annotator("a")
    served = []
    for _ in range(40):
        view = collector.next_pair(annotator["id"])
        pair = store.served_pair(view.served_pair_id)
        served.append(tuple(sorted((pair["left_base_response_id"], pair["right_base_response_id"]))))
        collector.submit(annotator["id"], view.served_pair_id, "left")
    assert len(set(served)) == 40
    pool = store.pool_snapshot()
    prompt, low, high, _ = base_pairs(pool)
    weights = np.random.default_rng(3).pareto(1.0, len(low)) + 0.01  # heavy-tailed, like softrank weights
    scores = AcquisitionScores("v1", pairs=np.stack([prompt, low, high], 1), values=weights / weights.sum())
    built = build_policy("active", store.active_policy()["config"], pool, acquisition_scores=scores,
                         served_pairs=store.served_base_pairs_since)
    built.prepare()
    rng = np.random.default_rng(11)
    n = 20_000
    counts: Counter = Counter()
    logged: dict[tuple[int, int], float] = {}
    for _ in range(n):
        p = built.propose(AnnotatorContext(annotator["id"]), rng)
        key = tuple(sorted((p.left.base_response_id, p.right.base_response_id)))
        assert key not in served
        counts[key] += 1
        pair_p = p.propensity_score / p.arm_propensity
        assert logged.setdefault(key, pair_p) == pytest.approx(pair_p)
    eligible = {(int(a), int(b)): float(q) for a, b, q in zip(built.pair_low, built.pair_high, built.probability) if q > 0}
    assert not set(eligible) & set(served)
    assert sum(eligible.values()) == pytest.approx(1.0)
    # chi-square over pairs with an expected count of at least 5 (the rest pooled)
    expected = np.array([eligible[k] * n for k in eligible])
    observed = np.array([counts[k] for k in eligible])
    big = expected >= 5
    stat = (((observed[big] - expected[big]) ** 2) / expected[big]).sum()
    rest_e, rest_o = expected[~big].sum(), observed[~big].sum()
    if rest_e > 0:
        stat += (rest_o - rest_e) ** 2 / rest_e
    from scipy.stats import chi2

    dof = int(big.sum()) + (rest_e > 0) - 1
    assert chi2.sf(stat, dof) > 0.001, f"frequencies differ from the logged probabilities (chi2 {stat:.0f} on {dof})"
    for k, q in logged.items():
        assert q == pytest.approx(eligible[k])
    # the floor: every eligible pair keeps at least uniform_share / (pairs left)
    assert min(eligible.values()) >= 0.1 / len(eligible) - 1e-12
    store.close()


def test_active_serves_each_base_pair_once_through_the_collector():
    """Through ``Collector.next_pair`` and ``submit``: no base pair comes back, and the logged
    propensity of each pair is its probability given the pairs served before it."""
    from collector.serving.service import Collector

    store = _active_store(prompts=6, responses=3)  # 18 base pairs
    store.activate_policy("active", {"attributes": ["bold"], "design_acquisition": "none", "per_prompt_cap": 1})
    collector = Collector(store, seed=1)
    annotator, _ = store.add_annotator("a")
    seen, propensities = [], []
    for _ in range(18):
        view = collector.next_pair(annotator["id"])
        pair = store.served_pair(view.served_pair_id)
        seen.append(tuple(sorted((pair["left_base_response_id"], pair["right_base_response_id"]))))
        propensities.append(pair["propensity_score"] / pair["arm_propensity"])
        collector.submit(annotator["id"], view.served_pair_id, "left")
    assert len(set(seen)) == 18
    # no scores yet: uniform over what is eligible; the cap keeps one pair per prompt until all six are used
    assert propensities[:6] == pytest.approx([1 / (18 - 3 * k) for k in range(6)])
    with pytest.raises(ConfigError, match="served once"):
        collector.next_pair(annotator["id"])
    store.close()
