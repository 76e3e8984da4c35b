"""The dashboard's tables: progress, effects (AMCE), balance between arms, overlap counts and
agreement (Krippendorff's alpha, pairwise agreement)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from acquisition.agreement import agreement_labels, agreement_table
from acquisition.balance import arm_balance, pair_families
from acquisition.effects import amce, labelled_pairs
from acquisition.sequential import resolved
from collector.app.panels.loading import SCOPES, randomised
from collector.store import Store


def _bin_seconds(epoch_ns: np.ndarray) -> int:
    """A time bin (1 min, 10 min, 1 h, 6 h or 1 day) giving at most ~150 points over the span."""
    span = (epoch_ns.max() - epoch_ns.min()) / 1e9 if len(epoch_ns) else 0
    return next((s for s in (60, 600, 3600, 21600) if span / s <= 150), 86400)


def _codes(column: pd.Series) -> tuple[np.ndarray, list]:
    """``(codes, categories)`` of a column (-1 for missing), cheap for the loader's categoricals."""
    cat = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
    return cat.cat.codes.to_numpy(), [str(c) for c in cat.cat.categories]


def progress_summary(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per annotator group (and ``all``): annotators, labels, median latency, skip and both-bad rates."""
    status, status_names = _codes(pairs["status"])
    label, label_names = _codes(pairs["label"])
    group, group_names = _codes(pairs["annotator_group"])
    labelled_all = status == (status_names.index("labelled") if "labelled" in status_names else -2)
    skipped_all = status == (status_names.index("skipped") if "skipped" in status_names else -2)
    both_bad = label == (label_names.index("both_bad") if "both_bad" in label_names else -2)
    latency = pairs["latency_ms"].to_numpy(float, na_value=np.nan)
    annotator = pairs["annotator_id"].to_numpy()
    rows = []
    for i, name in [(-1, "all")] + sorted(enumerate(group_names), key=lambda x: x[1]):
        here = np.ones(len(pairs), bool) if i < 0 else group == i
        labelled = here & labelled_all
        n_labels, skipped = int(labelled.sum()), int((here & skipped_all).sum())
        rows.append({
            "annotator_group": name, "annotators": int(np.unique(annotator[here]).size), "labels": n_labels,
            "median_latency_s": float(np.nanmedian(latency[labelled])) / 1000 if n_labels else math.nan,
            "skip_rate": skipped / (n_labels + skipped) if n_labels + skipped else math.nan,
            "both_bad_rate": float(both_bad[labelled].mean()) if n_labels else math.nan,
        })
    return pd.DataFrame(rows)


def family_summary(pairs: pd.DataFrame) -> pd.DataFrame:
    """Served and labelled pairs per family and policy version, as each pair recorded them when
    it was drawn (a quality-control pair is ``quality_control`` under the QC settings' version;
    a mixture's pair is filed under its component)."""
    columns = ["family", "policy", "policy_version", "served", "labelled"]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    df = pd.DataFrame({"family": pair_families(pairs), "policy": pairs["policy"].astype(object),
                       "policy_version": pairs["policy_version"],
                       "labelled": (pairs["status"] == "labelled").to_numpy()})
    out = df.groupby(["family", "policy", "policy_version"], sort=True).agg(
        served=("labelled", "size"), labelled=("labelled", "sum")).reset_index()
    return out[columns]


def effects_table(pairs: pd.DataFrame, rope: float = 0.0) -> pd.DataFrame:
    """AMCE of every randomised attribute, overall, by annotator group and by prompt type.

    Returns:
        ``[scope, cell, attribute, estimate, se, ci_low, ci_high, n_labels, n_on, n_off, method,
        estimand, se_annotator, n_annotators, cs_low, cs_high, resolved]``: ``resolved`` is
        ``non-zero`` once the confidence sequence excludes 0, ``negligible`` once it lies inside
        ``[-rope, rope]`` (the study's ``stop_rope``; 0: never).
    """
    attributes = randomised(pairs)
    parts = []
    for scope, column in SCOPES.items():
        table = amce(pairs, attributes=attributes, by=[column] if column else [])
        table.insert(0, "cell", table.pop(column).astype(str) if column else "all")
        table.insert(0, "scope", scope)
        table["resolved"] = [resolved(low, high, rope) or "" for low, high in zip(table["cs_low"], table["cs_high"])]
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def balance_table(store: Store, pairs: pd.DataFrame, sample: int = 3000, seed: int = 0) -> pd.DataFrame:
    """``acquisition.balance.arm_balance`` within annotator groups, on a seeded random sample of
    at most ``sample`` served pairs: attributes that were not randomised are read from the texts,
    which takes seconds over 100,000 pairs, and a few thousand pairs pin an SMD to about +-0.05.
    The sample's sizes are in ``n_arm`` and ``n_reference``."""
    part = pairs.sample(n=min(sample, len(pairs)), random_state=seed) if len(pairs) else pairs
    arms = [store.served_pair(int(i))["arm"] for i in part["served_pair_id"]]
    texts = {int(r): store.response(int(r))["text"]
             for r in pd.unique(part[["left_response_id", "right_response_id"]].to_numpy().ravel())}
    part = part.assign(arm=arms, left_text=part["left_response_id"].map(texts),
                       right_text=part["right_response_id"].map(texts))
    return arm_balance(part, by=("annotator_group",))


def _combination(pairs: pd.DataFrame, side: str, attributes: list[str]) -> pd.Series:
    on = [pairs[f"{side}_{a}"].fillna(False).to_numpy(bool) for a in attributes]
    return pd.Series(sum((o.astype(np.int64) << i for i, o in enumerate(on)), np.zeros(len(pairs), np.int64)),
                     index=pairs.index)


def overlap_counts(pairs: pd.DataFrame, max_rows: int = 128) -> pd.DataFrame:
    """Labelled responses (each side of a labelled randomised pair is one) per combination of the
    randomised attributes switched on x prompt type x annotator group, zeros included.

    Every combination is listed while there are at most ``max_rows`` of them; beyond that only the
    combinations some response carried (the empty ones are counted in the figure's title).

    Returns:
        ``[combination, task_type, annotator_group, labels]``.
    """
    attributes = randomised(pairs)
    labelled = labelled_pairs(pairs)
    if not attributes or labelled.empty:
        return pd.DataFrame(columns=["combination", "task_type", "annotator_group", "labels"])
    # a randomised pair has a flag on one side at least (a side an attribute does not apply to shows
    # none of them: it counts under "none")
    flags = [f"{side}_{a}" for side in ("left", "right") for a in attributes]
    designed = labelled[labelled[flags].notna().any(axis=1)]
    codes = pd.concat([_combination(designed, s, attributes) for s in ("left", "right")])
    frame = pd.DataFrame({"code": codes.to_numpy(),
                          "task_type": pd.concat([designed["task_type"]] * 2).to_numpy(),
                          "annotator_group": pd.concat([designed["annotator_group"]] * 2).to_numpy()})
    counts = frame.groupby(["code", "task_type", "annotator_group"]).size()
    all_codes = range(2 ** len(attributes)) if 2 ** len(attributes) <= max_rows else sorted(frame["code"].unique())
    index = pd.MultiIndex.from_product([all_codes, sorted(pairs["task_type"].dropna().unique()),
                                        sorted(pairs["annotator_group"].dropna().unique())],
                                       names=["code", "task_type", "annotator_group"])
    out = counts.reindex(index, fill_value=0).rename("labels").reset_index()
    names = {c: "+".join(a for i, a in enumerate(attributes) if c >> i & 1) or "none" for c in all_codes}
    out.insert(0, "combination", out.pop("code").map(names))
    out.attrs["combinations"] = 2 ** len(attributes)
    return out


def agreement_summary(pairs: pd.DataFrame) -> pd.DataFrame:
    """The Agreement panel: ``acquisition.agreement.agreement_table`` on the labels of regular
    pairs and repeats from included annotators (checks and excluded annotators leave)."""
    return agreement_table(agreement_labels(pairs))
