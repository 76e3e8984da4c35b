"""The AMCE of one attribute randomised in an 80/20 mixture with observational pairs: the
propensities the mixture logs must be those the estimator can use (a randomised pair with the
attribute off on both sides cannot have come from the observational component), or the all-off
pairs are down-weighted and the estimate is biased. The truth is computed apart from any
weight: by enumeration over the randomised component's design."""

import numpy as np
import pandas as pd

from acquisition.effects import amce
from acquisition.policies import AnnotatorContext, build_policy
from collector.store import Store

BETA = 1.0  # the attribute's true effect on the logit


def _pool():
    s = Store(":memory:")
    s.add_pool([{"prompt": f"Q{i}?", "responses": [{"text": f"Reply {j} to {i}."} for j in range(3)]}
                for i in range(12)], source="test")
    snap = s.pool_snapshot()
    s.close()
    return snap


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_mixture_amce_recovers_the_true_effect_with_nominal_coverage():
    pool = _pool()
    rids = sorted(pool.response_text)
    quality = dict(zip(rids, np.random.default_rng(0).normal(0, 1.0, len(rids))))
    policy = build_policy("mixture", {"components": [
        {"name": "randomised_attributes", "weight": 0.8, "config": {"attributes": ["bold"], "probability": 0.5}},
        {"name": "observational", "weight": 0.2}]}, pool)
    # truth: every base pair of every prompt equally likely, either order, the other side's flag a coin
    diffs = [quality[a] - quality[b] for p in pool.servable for a in p.response_ids for b in p.response_ids if a != b]
    d = np.array(diffs)
    truth = float(np.mean([_sigmoid(d + BETA * (1 - t)) - _sigmoid(d - BETA * t) for t in (0, 1)]))
    rng = np.random.default_rng(1)
    covered, estimates, n_reps = 0, [], 200
    for _ in range(n_reps):
        rows = []
        for _ in range(600):
            p = policy.propose(AnnotatorContext(1), rng)
            ql, qr = quality[p.left.base_response_id], quality[p.right.base_response_id]
            vl, vr = p.left.edit_vector.get("bold"), p.right.edit_vector.get("bold")
            tl, tr = (bool(vl["on"]) if vl else None), (bool(vr["on"]) if vr else None)
            logit = ql - qr + BETA * ((tl or False) - (tr or False))
            rows.append({"label": "left" if rng.random() < _sigmoid(logit) else "right", "policy": "mixture",
                         "policy_version": 1, "arm_propensity": p.arm_propensity,
                         "left_bold": tl, "right_bold": tr})
        frame = pd.DataFrame(rows).astype({"left_bold": "boolean", "right_bold": "boolean"})
        row = amce(frame, attributes=["bold"]).iloc[0]
        estimates.append(row.estimate)
        covered += row.ci_low <= truth <= row.ci_high
    bias = float(np.mean(estimates)) - truth
    se_of_mean = float(np.std(estimates)) / np.sqrt(n_reps)
    assert abs(bias) < 3 * se_of_mean + 0.002, f"biased: mean {np.mean(estimates):.4f} vs truth {truth:.4f}"
    assert 0.90 <= covered / n_reps <= 0.99, f"coverage {covered / n_reps:.3f}"
