"""Balance: standardised mean differences (SMD) of attributes between chosen and rejected,
between left and right, within annotator groups and prompt types.

|SMD| < 0.1 is the usual threshold for "balanced" (Austin, 2009). An attribute's indicator
comes from the served pair's edit vector when the policy randomised it, and is read from the
text with the editor's ``measure`` otherwise (observational pairs), so the same report
compares interventional and observational arms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from acquisition.editors import EDITORS


def smd(a: np.ndarray, b: np.ndarray) -> float:
    """`(mean(a) - mean(b)) / sqrt((var(a) + var(b)) / 2)`; 0 when both are constant and equal."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    diff = a.mean() - b.mean()
    pooled = np.sqrt((a.var(ddof=1 if len(a) > 1 else 0) + b.var(ddof=1 if len(b) > 1 else 0)) / 2)
    if pooled == 0:
        return 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    return float(diff / pooled)


def indicator(df: pd.DataFrame, side: str, attribute: str) -> pd.Series:
    """1.0 / 0.0 / NaN per row, from ``Editor.state``: the treatment received where the policy
    randomised the attribute (the ``<side>_<attribute>`` column, read on the text served), NaN
    where it randomised it but the attribute does not apply to the response (a balance row is
    then about the pairs where it applies, the AMCE's estimand), else what the text shows (read
    from it; off for the positive controls; NaN for verbosity)."""
    flags = df.get(f"{side}_{attribute}")
    assigned = df.get(f"{side}_{attribute}_assigned")
    text_col = f"{side}_text" if f"{side}_text" in df.columns else side
    editor = EDITORS[attribute]
    switched = pd.Series(np.nan, index=df.index) if flags is None else flags.astype("Float64").astype(float)
    unswitched = switched.isna()
    if assigned is not None:
        unswitched &= assigned.isna().to_numpy()  # randomised where it does not apply: left out
    if unswitched.any():  # read only the texts no policy switched
        switched[unswitched] = df.loc[unswitched, text_col].map(lambda t: editor.state(None, t))
    return switched


def regular_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """Leave out quality-control items (gold pairs, attention checks): they are not drawn by
    the policy, so they say nothing about its balance. Repeats of regular pairs stay."""
    if "qc_kind" not in pairs.columns:
        return pairs
    return pairs[~pairs["qc_kind"].isin(["gold", "attention"])]


def chosen_rejected_smd(trl: pd.DataFrame) -> pd.DataFrame:
    """One row per attribute: SMD between chosen and rejected responses of a TRL export."""
    rows = []
    for attribute in sorted(EDITORS):
        c, r = indicator(trl, "chosen", attribute), indicator(trl, "rejected", attribute)
        keep = c.notna() & r.notna()
        rows.append({"attribute": attribute, "smd": smd(c[keep], r[keep]), "n": int(keep.sum()),
                     "chosen_rate": float(c[keep].mean()) if keep.any() else float("nan"),
                     "rejected_rate": float(r[keep].mean()) if keep.any() else float("nan")})
    return pd.DataFrame(rows)


def balance_report(pairs: pd.DataFrame, by: tuple[str, ...] = ("annotator_group", "task_type")) -> pd.DataFrame:
    """SMD of every attribute between left and right within each stratum of ``by``.

    Args:
        pairs: a ``pairs`` export (``collector.io.export.pairs_frame``).

    Returns:
        columns ``stratum``, ``attribute``, ``smd``, ``n``; stratum ``all`` covers every row.
    """
    pairs = regular_pairs(pairs)
    rows = []
    strata = [("all", pairs)] + [
        (f"{col}={value}", part) for col in by for value, part in pairs.groupby(col)
    ]
    for name, part in strata:
        for attribute in sorted(EDITORS):
            left, right = indicator(part, "left", attribute), indicator(part, "right", attribute)
            keep = left.notna() & right.notna()
            rows.append({"stratum": name, "attribute": attribute, "smd": smd(left[keep], right[keep]),
                         "n": int(keep.sum())})
    return pd.DataFrame(rows)


def pair_families(pairs: pd.DataFrame) -> pd.Series:
    """The family each pair recorded when it was drawn (``acquisition.core.records.FAMILIES``;
    a mixture's pair is filed under its component), read from the record, never from the arm
    name; ``unknown`` where a frame has none."""
    if "family" not in pairs.columns:
        return pd.Series("unknown", index=pairs.index, dtype=object)
    return pairs["family"].astype(object).where(pairs["family"].notna(), "unknown")


def arm_balance(pairs: pd.DataFrame, by: tuple[str, ...] = ("annotator_group",)) -> pd.DataFrame:
    """SMD of every attribute (and of response length) between each arm family and the
    reference arm, within strata of ``by``.

    Each side of a labelled or served pair is one profile; an attribute's indicator comes
    from the edit vector where randomised and from the text otherwise. The reference is the
    observational arm where there is one, else the family with the most pairs, so a row
    reads "how different are the responses this arm shows from the comparison arm".

    Returns:
        columns ``stratum``, ``arm``, ``reference``, ``covariate``, ``smd``, ``n_arm``, ``n_reference``.
    """
    columns = ["stratum", "arm", "reference", "covariate", "smd", "n_arm", "n_reference"]
    pairs = regular_pairs(pairs)
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    families = pair_families(pairs)
    strata = [("all", pairs.index)] + [
        (f"{col}={value}", part.index) for col in by for value, part in pairs.groupby(col)
    ]
    profiles = {}
    for attribute in sorted(EDITORS):
        profiles[attribute] = pd.concat([indicator(pairs, "left", attribute),
                                         indicator(pairs, "right", attribute)])
    profiles["response_length"] = pd.concat([pairs["left_text"].str.len(), pairs["right_text"].str.len()])
    fam2 = pd.concat([families, families])
    rows = []
    for name, index in strata:
        fam = families.loc[index]
        counts = fam.value_counts()
        if len(counts) < 2:
            continue
        reference = "observational" if "observational" in counts.index else str(counts.index[0])
        for arm in sorted(counts.index):
            if arm == reference:
                continue
            for covariate, values in profiles.items():
                v = values.loc[index]
                f = fam2.loc[index]
                a, r = v[(f == arm).to_numpy()], v[(f == reference).to_numpy()]
                a, r = a[a.notna()], r[r.notna()]
                rows.append({"stratum": name, "arm": arm, "reference": reference, "covariate": covariate,
                             "smd": smd(a.to_numpy(), r.to_numpy()) if len(a) and len(r) else float("nan"),
                             "n_arm": int(counts[arm]), "n_reference": int(counts[reference])})
    return pd.DataFrame(rows, columns=columns)
