"""Training weights from the assignment mechanism: the stabilised inverse probability of the part
of the design that depends on something observed.

A served pair's arm (its edits and display order) was drawn with probability
``arm_propensity = p(arm | X)``, where X is whatever the policy conditioned on: the prompt and
base pair, the annotator's group, the cell counts so far, the live model's scores. The weight

    w = p̄(arm) / p(arm | X),    p̄(a) = E_X[p(a | X)]  (within one policy version)

is Hernán and Robins' stabilised weight with the arm as the treatment. Weighted, the labels look
as if every arm had been drawn with its design-average probability whatever X was: arms are
independent of the covariates, and their mix is the design's own. A weighted fit (``train-rm``,
or the ``weight`` column of a TRL export) therefore targets the preference under that mix. The
estimand is the design's, not a uniform design's: the weights undo what the design made depend
on covariates, never the design's own coin flips.

Where an arm's probability depends on nothing observed (every pair of that arm in the policy
version logged the same ``arm_propensity``: ``randomised_attributes``, assignment
randomisation, a fixed mixture of them), ``p̄(arm) = p(arm | X)`` and the weight is exactly 1:
no noise is added. Where it varies, ``p̄(arm)`` is estimated by the arm's share of the policy
version's rows (``E[1{A = a}] = p̄(a)``) and those rows' weights are normalised to mean 1
(Hajek); they are clipped at ``clip``. A row without a propensity (imported preferences) weighs 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# relative tolerance within which one arm's logged propensities count as one number (they are
# computed in floating point from the same config, so equal designs log equal values)
SAME_PROPENSITY_RTOL = 1e-9


def design_weights(rows: pd.DataFrame, clip: float = 20.0) -> np.ndarray:
    """Per row (columns ``policy``, ``policy_version``, ``arm``, ``arm_propensity``): the
    stabilised inverse probability of the covariate-dependent part of its arm's assignment;
    exactly 1 for arms whose probability depends on nothing observed."""
    weights = np.ones(len(rows))
    if not len(rows):
        return weights
    p = pd.to_numeric(rows["arm_propensity"], errors="coerce").to_numpy(dtype=float)
    # each column's codes (missing values one code of their own), not its values as text
    policy = pd.factorize(rows["policy"], use_na_sentinel=False)[0] if "policy" in rows else np.zeros(len(rows), int)
    version = pd.factorize(rows["policy_version"], use_na_sentinel=False)[0]
    arm = pd.factorize(rows["arm"], use_na_sentinel=False)[0]
    frame = pd.DataFrame({"policy": policy, "version": version, "arm": arm, "p": p})
    for _, design in frame.groupby(["policy", "version"], sort=False):
        n = len(design)
        varying: list[np.ndarray] = []
        for _, part in design.groupby("arm", sort=False):
            values = part["p"].to_numpy()
            ok = np.isfinite(values) & (values > 0)
            if not ok.all():
                continue  # no propensity logged: weight 1
            if np.allclose(values, values[0], rtol=SAME_PROPENSITY_RTOL, atol=0.0):
                continue  # the arm's probability depends on nothing observed: exactly 1
            index = part.index.to_numpy()
            weights[index] = (len(part) / n) / values
            varying.append(index)
        if varying:
            # Hajek: sum_i p̄(a_i) / p(a_i | X_i) over these rows estimates their number, so the
            # mean is set to 1 there; it also takes out a constant factor in how a policy logs
            # the arm's probability (the display order's 1/2 where an arm names the sides)
            index = np.concatenate(varying)
            weights[index] /= weights[index].mean()
    return np.minimum(weights, clip)
