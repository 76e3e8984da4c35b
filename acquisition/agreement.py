"""Inter-annotator agreement: Krippendorff's alpha (nominal, from the ``krippendorff`` package)
and pairwise agreement, on items several annotators labelled, with a bootstrap CI over items.

Coding is position-free. An item is the unordered pair of response rows an annotator was shown;
each label is coded as the item's *first* response (the lower row id) or *second* response
chosen, *tie*, or *both bad*, whatever side each was displayed on. Coding by the chosen row id
(the earlier version) made every item's categories its own, so chance agreement was about 0 and
alpha collapsed to raw agreement (0.744 against 0.52 on a simulated overlap-3 collection).
Each annotator's first label of an item counts.
"""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pandas as pd

CATEGORIES = ("first", "second", "tie", "both_bad")
AGREEMENT_COLUMNS = ["annotator_group", "items", "labels", "krippendorff_alpha", "alpha_ci_low", "alpha_ci_high",
                     "pairwise_agreement"]


def agreement_labels(pairs: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """The labels agreement reads from a served-pair frame: every label (both-bad included) on a
    regular pair or a repeat, from annotators who are not excluded; gold pairs and attention
    checks leave (their answers are known, not judged). ``columns``: only these (one copy of
    what is read, not of every column)."""
    keep = pairs["label"].notna()
    if "qc_kind" in pairs.columns:
        keep &= pairs["qc_kind"].fillna("regular").isin(["regular", "repeat"])
    if "excluded" in pairs.columns:
        keep &= ~pairs["excluded"].fillna(False).astype(bool)
    return pairs[keep] if columns is None else pairs.loc[keep, columns]


def agreement_items(labels: pd.DataFrame) -> pd.DataFrame:
    """``(item_low, item_high, annotator_id, annotator_group, code)`` per label, one per annotator
    and item, ``code`` indexing ``CATEGORIES``.

    Args:
        labels: one row per label with ``left_response_id``, ``right_response_id``, ``label``
            (``left``/``right``/``tie``/``both_bad``), ``annotator_id`` and ``annotator_group``.
    """
    left = labels["left_response_id"].to_numpy(np.int64)
    right = labels["right_response_id"].to_numpy(np.int64)
    label = labels["label"].astype(str).to_numpy()
    low, high = np.minimum(left, right), np.maximum(left, right)
    chosen = np.where(label == "left", left, right)
    code = np.select([label == "tie", label == "both_bad", chosen == low], [2, 3, 0], 1)
    items = pd.DataFrame({"item_low": low, "item_high": high, "annotator_id": labels["annotator_id"].to_numpy(),
                          "annotator_group": labels["annotator_group"].astype(str).to_numpy(), "code": code})
    return items.drop_duplicates(["item_low", "item_high", "annotator_id"]).reset_index(drop=True)


def value_counts(items: pd.DataFrame) -> np.ndarray:
    """`(units, 4)`: how many labels of each category every item with two or more labels got."""
    counts = (items.groupby(["item_low", "item_high", "code"]).size().unstack("code", fill_value=0)
              .reindex(columns=range(len(CATEGORIES)), fill_value=0))
    counts = counts[counts.sum(axis=1) >= 2]
    return counts.to_numpy(dtype=float)


def alpha(counts: np.ndarray) -> float:
    """Krippendorff's alpha (nominal) of a ``value_counts`` matrix; NaN without pairable labels,
    1.0 when every label is in one category (nothing to disagree on)."""
    if counts.size == 0 or counts.sum() < 2:
        return math.nan
    if np.count_nonzero(counts.sum(axis=0)) < 2:
        return 1.0
    return float(krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"))


def pairwise_agreement(counts: np.ndarray) -> float:
    """Share of agreeing pairs among all pairs of labels within the same item (NaN without pairs)."""
    m = counts.sum(axis=1)
    pairs = (m * (m - 1) / 2).sum()
    return float((counts * (counts - 1) / 2).sum() / pairs) if pairs else math.nan


def bootstrap_alpha(counts: np.ndarray, draws: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval for alpha from resampling items with replacement; NaN with fewer than
    two items."""
    if len(counts) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    values = np.array([alpha(counts[rng.integers(len(counts), size=len(counts))]) for _ in range(draws)])
    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def agreement_table(labels: pd.DataFrame, draws: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Overall (``all``: items two or more annotators labelled) and per annotator group (items two
    or more annotators of that group labelled): the items and labels behind each figure,
    Krippendorff's alpha with its bootstrap 95% CI over items, and pairwise agreement."""
    items = agreement_items(labels)
    rows = []
    for group, part in [("all", items)] + list(items.groupby("annotator_group")):
        counts = value_counts(part)
        low, high = bootstrap_alpha(counts, draws, seed)
        rows.append({"annotator_group": group, "items": len(counts), "labels": int(counts.sum()),
                     "krippendorff_alpha": alpha(counts), "alpha_ci_low": low, "alpha_ci_high": high,
                     "pairwise_agreement": pairwise_agreement(counts)})
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)
