"""Attribute effects from a Deconfound effects export with DoWhy and EconML.

    python -m collector export --format effects --out effects.parquet
    python docs/recipes/dowhy_econml.py effects.parquet [ATTRIBUTE ...]

Runs in an environment of its own (DoWhy 0.14 and EconML 0.17 pin an older SciPy than the
app's): ``python -m venv .venv-causal && .venv-causal/bin/pip install dowhy==0.14 econml==0.17``.

For each attribute it keeps the rows whose pair randomised it (the flag is not null), and
estimates the effect of showing it on ``chosen``:

- DoWhy: inverse-propensity weighting with the design's own propensity, the export's
  ``<attribute>_propensity`` column, normalised (Hajek): what the dashboard's AMCE computes.
  The column must be named explicitly: DoWhy's default, ``propensity_score``, is not in this
  format (in the others it is the joint probability of the whole pair).
- EconML: ``LinearDML`` with the treatment flag, no effect modifiers, and constant nuisance
  models (randomised: nothing predicts the flag), i.e. the residual-on-residual estimate.

Prints one JSON object: ``{attribute: {"dowhy": ..., "econml": ..., "econml_ci": [lo, hi],
"n": rows}}``. The AMCE's intervals are clustered by served pair (its two rows are mirror
images); EconML's here are not.
"""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pandas as pd


def attributes_of(df: pd.DataFrame) -> list[str]:
    return sorted(c[: -len("_propensity")] for c in df.columns
                  if c.endswith("_propensity") and c not in ("arm_propensity", "pair_propensity")
                  and df[c].notna().any())


def dowhy_effect(sub: pd.DataFrame, attribute: str) -> float:
    from dowhy import CausalModel

    data = pd.DataFrame({"shown": sub[attribute].astype(bool), "chosen": sub["chosen"].astype(float),
                         "position": sub["position"].astype(int), "p": sub[f"{attribute}_propensity"].astype(float)})
    # the display position is a pre-treatment covariate DoWhy needs to name; the propensity is given
    model = CausalModel(data=data, treatment="shown", outcome="chosen", common_causes=["position"])
    estimand = model.identify_effect(proceed_when_unidentifiable=True)
    estimate = model.estimate_effect(estimand, method_name="backdoor.propensity_score_weighting",
                                     method_params={"weighting_scheme": "ips_normalized_weight",
                                                    "propensity_score_column": "p"})
    return float(estimate.value)


def econml_effect(sub: pd.DataFrame, attribute: str) -> tuple[float, tuple[float, float]]:
    from econml.dml import LinearDML
    from sklearn.dummy import DummyClassifier, DummyRegressor

    model = LinearDML(model_y=DummyRegressor(), model_t=DummyClassifier(), discrete_treatment=True, cv=2,
                      random_state=0)
    model.fit(sub["chosen"].to_numpy(dtype=float), sub[attribute].astype(int).to_numpy(), X=None, W=None)
    low, high = model.ate_interval()
    return float(model.ate()), (float(low), float(high))


def main() -> None:
    warnings.filterwarnings("ignore")
    path, wanted = sys.argv[1], sys.argv[2:]
    df = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_json(path, lines=True)
    out = {}
    for attribute in wanted or attributes_of(df):
        sub = df[df[attribute].notna() & df[f"{attribute}_propensity"].notna()]
        if sub[attribute].nunique() < 2:
            continue
        econ, ci = econml_effect(sub, attribute)
        out[attribute] = {"dowhy": dowhy_effect(sub, attribute), "econml": econ, "econml_ci": list(ci),
                          "n": int(len(sub)), "difference_in_means": float(
                              np.average(sub["chosen"], weights=sub[attribute].astype(bool))
                              - np.average(sub["chosen"], weights=~sub[attribute].astype(bool)))}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
