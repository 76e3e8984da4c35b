import numpy as np
import pytest

from acquisition.design import DesignScores, design_points, design_scores


def _comparisons(n=40, seed=0):
    """Annotators who always prefer bold and don't care about emoji."""
    rng = np.random.default_rng(seed)
    points = [frozenset(a for a, bit in zip(["bold", "emoji"], row) if bit) for row in design_points(["bold", "emoji"])]
    out = []
    for _ in range(n):
        a, b = rng.choice(len(points), 2, replace=False)
        x, y = points[a], points[b]
        if ("bold" in x) == ("bold" in y):
            continue
        out.append((x, y) if "bold" in x else (y, x))
    return out


@pytest.mark.parametrize("acquisition", ["eubo", "bald"])
def test_design_scores_cover_every_pair_of_design_points(acquisition):
    scores = design_scores(["bold", "emoji"], _comparisons(), acquisition)
    assert scores.shape == (6,) and np.isfinite(scores).all()
    if acquisition == "bald":
        assert (scores >= -1e-9).all()  # mutual information


def test_bald_prefers_comparisons_the_gp_is_unsure_about():
    # pairs (combinations order over points {}, {emoji}, {bold}, {bold, emoji}):
    # 0: {} vs {emoji}  -- bold equal on both sides: outcome uncertain
    # 1: {} vs {bold}   -- bold decides it: the GP is sure
    scores = design_scores(["bold", "emoji"], _comparisons(80), "bald")
    assert scores[0] > scores[1]


def test_unknown_acquisition_and_no_comparisons_are_errors():
    with pytest.raises(ValueError, match="unknown design acquisition"):
        design_scores(["bold"], _comparisons(), "ucb")
    with pytest.raises(ValueError, match="no comparisons"):
        design_scores(["bold"], [], "eubo")


def test_active_policy_uses_only_scores_from_its_own_acquisition():
    from acquisition.policies import build_policy
    from collector.store import Store
    from collector.store.create import load_demo_pool

    s = Store(":memory:")
    s.add_pool(load_demo_pool(), source="demo")
    pool = s.pool_snapshot()
    scores = np.arange(6, dtype=float)
    config = {"attributes": ["bold", "emoji"], "design_acquisition": "bald"}
    eubo, bald = (DesignScores(["bold", "emoji"], scores, acquisition) for acquisition in ("eubo", "bald"))
    assert build_policy("active", config, pool, design_scores=eubo).design_weight is None
    assert build_policy("active", config, pool, design_scores=bald).design_weight is not None
