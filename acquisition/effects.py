"""Attribute effects on the choice (AMCE), estimated from the randomised arms only.

The estimand is the average marginal component effect of conjoint analysis (Hainmueller,
Hopkins and Yamamoto 2014) for a forced choice between two profiles: for attribute ``a``,

    AMCE_a = P(a response is chosen | a on) - P(a response is chosen | a off),

averaged over the randomisation distribution of everything else. Each labelled pair gives
two profiles (its sides); a tie counts as half a choice for each side, a both-bad label is
left out. Only pairs whose edit vector switched ``a`` on or off by a random draw enter the
estimate for ``a`` (an attribute absent from the edit vector was not randomised), so the
observational arms never contribute.

The treatment is the one *received*: the manipulation check run on the text served, so an
edit that failed counts as off, and a response the attribute does not apply to (a list needs
three sentences) is not in the attribute's estimand, which is the effect among responses where
it applies. ``treatment="assigned"`` gives the intention-to-treat contrast of the policy's draws.

Two estimands, named in every table (``estimand``):

- ``design`` (the default; cregg's convention): the AMCE under the study's own design, the other
  attributes at the rates the design drew them. Within each design stratum (policy, version and
  the pair's recorded marginals, so a mixture's components with different rates are not pooled)
  it is the difference in means, weighted by ``acquisition.weights.design_weights`` (exactly 1
  where an arm depends on nothing observed; the stabilised inverse probability of what an
  adaptive design made depend on covariates elsewhere); strata are combined by their number of
  labelled pairs. This is what the effects export's DoWhy/EconML recipe estimates.
- ``uniform``: the other attributes reweighted to equal arms: weights ``1 / arm_propensity``
  (the stored probability of the pair's edits and display position given its prompt and base
  pair), normalised within each policy version. It differs from ``design`` where the design is
  unequal (e.g. one attribute at 0.3) and attributes interact.

Where every weight is 1 both are the plain difference in means. Standard errors are
cluster-robust by served pair (``se``: the two profiles of a pair are mirror images), and, side
by side, by annotator (``se_annotator``: the conjoint convention, as in cregg, where one
respondent's choices are not independent). ``ci_low``/``ci_high`` is the fixed-sample 95% CI (pair
SE): valid at one sample size fixed in advance. ``cs_low``/``cs_high`` is the 95% confidence
sequence (``acquisition.sequential``), valid however often the study is looked at and whenever it
is stopped: the one that licenses stopping.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from acquisition import sequential
from acquisition.weights import design_weights

Z95 = 1.959963984540054
COLUMNS = ["attribute", "estimate", "se", "ci_low", "ci_high", "n_labels", "n_on", "n_off", "method", "estimand",
           "se_annotator", "n_annotators", "cs_low", "cs_high"]
ESTIMANDS = {"design": "AMCE under the study's own design (cregg's convention)",
             "uniform": "AMCE under a uniform design (other attributes reweighted to equal arms)"}


def labelled_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """The labelled regular pairs of a ``pairs_frame``: not skipped, not both-bad, not a
    quality-control item, not from an excluded annotator (where those columns exist)."""
    return pairs[labelled_mask(pairs)]


def labelled_mask(pairs: pd.DataFrame) -> np.ndarray:
    """Which rows ``labelled_pairs`` keeps."""
    keep = pairs["label"].isin(["left", "right", "tie"]).to_numpy(dtype=bool, copy=True)
    if "qc_kind" in pairs.columns:
        keep &= (pairs["qc_kind"].isna() | pairs["qc_kind"].isin(["regular", "repeat"])).to_numpy(dtype=bool)
    if "excluded" in pairs.columns:
        keep &= ~pairs["excluded"].fillna(False).astype(bool).to_numpy(dtype=bool)
    return keep


def randomised_attributes(pairs: pd.DataFrame, rows: np.ndarray | None = None) -> list[str]:
    """Attributes that some pair (of ``rows``, a mask; default every row) randomised on both
    sides (so an effect can be estimated)."""
    rows = np.ones(len(pairs), dtype=bool) if rows is None else rows
    found: set[str] = set()
    for column in ("left_edit_vector", "right_edit_vector"):
        for text in pairs.loc[rows, column].dropna().unique():
            found.update(json.loads(text))
    return sorted(a for a in found
                  if f"left_{a}" in pairs.columns and pairs.loc[rows, f"left_{a}"].notna().any())


def _side_outcomes(df: pd.DataFrame, left_outcome: str | None) -> np.ndarray:
    if left_outcome is not None:
        return df[left_outcome].to_numpy(dtype=float)
    return df["label"].map({"left": 1.0, "right": 0.0, "tie": 0.5}).to_numpy(dtype=float)


def _weights(df: pd.DataFrame) -> np.ndarray:
    """The ``uniform`` estimand's weights: 1 / arm_propensity, normalised within each version."""
    w = pd.Series(1.0 / df["arm_propensity"].to_numpy(dtype=float), index=df.index)
    mean = w.groupby([df["policy"], df["policy_version"]], sort=False).transform("mean")
    return (w / mean).to_numpy()


def _strata(df: pd.DataFrame) -> list[np.ndarray]:
    """Positions of the rows of each design stratum: policy, version and the recorded marginals."""
    columns = ["policy", "policy_version"] + (["edit_marginals"] if "edit_marginals" in df.columns else [])
    # codes, not strings: a million marginals written out as text is hundreds of MB
    codes = pd.MultiIndex.from_arrays([pd.factorize(df[c], use_na_sentinel=False)[0] for c in columns]).factorize()[0]
    return [np.flatnonzero(codes == c) for c in range(codes.max() + 1)] if len(codes) else []


def amce_design(y_left: np.ndarray, on_left: np.ndarray, on_right: np.ndarray, w: np.ndarray,
                strata: list[np.ndarray], clusters: np.ndarray | None = None) -> tuple[float, float, int, int, float]:
    """``amce_one`` within each stratum, combined by the stratum's share of pairs (strata where
    one level is empty carry no contrast and are left out); strata are independent.

    Returns ``(estimate, se, n_on, n_off, se_clustered)``: ``se`` clusters by pair, and
    ``se_clustered`` by ``clusters`` (one id per pair, e.g. its annotator), whose pairs may lie in
    several strata (NaN without ``clusters``)."""
    t = np.concatenate([on_left, on_right]).astype(bool)
    n_on, n_off = int(t.sum()), int((~t).sum())
    parts = []
    for s in strata:
        est, psi, _, _ = _amce_terms(y_left[s], on_left[s], on_right[s], w[s])
        if not math.isnan(est):
            parts.append((s, est, psi))
    if not parts:
        return math.nan, math.nan, n_on, n_off, math.nan
    total = sum(len(s) for s, _, _ in parts)
    est = sum(len(s) / total * e for s, e, _ in parts)
    se = math.sqrt(sum((len(s) / total) ** 2 * _pair_variance(psi) for s, _, psi in parts))
    se_clustered = math.nan
    if clusters is not None:
        index = np.concatenate([s for s, _, _ in parts])
        terms = np.concatenate([len(s) / total * psi for s, _, psi in parts])
        se_clustered = math.sqrt(_cluster_variance(terms, clusters[index]))
    return float(est), se, n_on, n_off, se_clustered


def _pair_variance(psi: np.ndarray) -> float:
    n = len(psi)
    return float((psi ** 2).sum()) * (n / (n - 1) if n > 1 else 1.0)


def _cluster_variance(psi: np.ndarray, clusters: np.ndarray) -> float:
    """The cluster-robust variance of a sum of influence terms: the terms summed within each
    cluster, with the small-sample factor G / (G - 1) (cregg's convention, by respondent)."""
    codes, _ = pd.factorize(pd.Series(clusters))
    sums = np.bincount(codes, weights=psi)
    g = len(sums)
    return float((sums ** 2).sum()) * (g / (g - 1) if g > 1 else 1.0)


def _amce_terms(y_left: np.ndarray, on_left: np.ndarray, on_right: np.ndarray,
                w: np.ndarray) -> tuple[float, np.ndarray, int, int]:
    """The Hajek difference in means over both profiles of each pair, with one influence term
    per pair (its two profiles together: they are mirror images); NaN where a level is empty."""
    t = np.concatenate([on_left, on_right]).astype(bool)
    y = np.concatenate([y_left, 1.0 - y_left])
    ww = np.concatenate([w, w])
    n_on, n_off = int(t.sum()), int((~t).sum())
    n = len(y_left)
    if n_on == 0 or n_off == 0:
        return math.nan, np.zeros(n), n_on, n_off
    w1, w0 = ww[t].sum(), ww[~t].sum()
    mu1, mu0 = (ww * y)[t].sum() / w1, (ww * y)[~t].sum() / w0
    contrib = np.where(t, ww * (y - mu1) / w1, -ww * (y - mu0) / w0)
    return float(mu1 - mu0), contrib[:n] + contrib[n:], n_on, n_off


def amce_one(y_left: np.ndarray, on_left: np.ndarray, on_right: np.ndarray,
             w: np.ndarray) -> tuple[float, float, int, int]:
    """Hajek difference in means over both profiles of each pair, with a pair-clustered SE.

    Returns:
        ``(estimate, se, n_on, n_off)`` counted in profiles; NaN where one level is empty.
    """
    est, psi, n_on, n_off = _amce_terms(y_left, on_left, on_right, w)
    if math.isnan(est):
        return math.nan, math.nan, n_on, n_off
    return est, math.sqrt(_pair_variance(psi)), n_on, n_off


def amce(pairs: pd.DataFrame, attributes: Sequence[str] | None = None, by: Sequence[str] = (),
         left_outcome: str | None = None, treatment: str = "realised", estimand: str = "design") -> pd.DataFrame:
    """Each attribute's AMCE on the choice with a 95% CI, overall or within ``by`` cells.

    Args:
        pairs: ``collector.io.export.pairs_frame(store)`` (or a frame with its columns).
        attributes: which to estimate; default every attribute some pair randomised.
        by: columns to estimate within, e.g. ``["annotator_group"]`` or ``["task_type"]``.
        left_outcome: a column holding the outcome for the left side instead of the label
            (e.g. the true choice probability in a simulation, which gives the true AMCE on
            the same design).
        treatment: ``"realised"`` (default): the treatment received, read on the text served,
            so a failed edit counts as off; ``"assigned"``: the policy's draw (intention to
            treat, ``<side>_<attr>_assigned``). Both among the pairs where the attribute
            applies to both responses.
        estimand: ``"design"`` (default): under the study's own design; ``"uniform"``: the
            other attributes reweighted to equal arms (``ESTIMANDS``).

    Returns:
        one row per (cell, attribute): ``[*by, attribute, estimate, se, ci_low, ci_high,
        n_labels, n_on, n_off, method, estimand]``.
    """
    if treatment not in ("realised", "assigned"):
        raise ValueError(f"treatment must be 'realised' or 'assigned', not {treatment!r}")
    if estimand not in ESTIMANDS:
        raise ValueError(f"estimand must be one of {', '.join(ESTIMANDS)}, not {estimand!r}")
    # no copy of the labelled rows: each cell is a list of row positions, and each attribute's
    # estimate copies only the rows and columns it reads (a million pairs' labelled rows with every
    # attribute's columns, copied once, was the card's peak: 110 MB at 1M labels)
    keep = labelled_mask(pairs) if left_outcome is None else np.ones(len(pairs), dtype=bool)
    if attributes is None:
        attributes = randomised_attributes(pairs, keep)
    kept = np.flatnonzero(keep)
    cells: Iterator[tuple[tuple[Any, ...], np.ndarray]]
    if not by:
        cells = iter([((), kept)])
    else:
        keys = pairs[list(by)].iloc[kept].assign(_position=kept)
        cells = ((k if isinstance(k, tuple) else (k,), g["_position"].to_numpy())
                 for k, g in keys.groupby(list(by), sort=True))
    # rows where the attribute applies to both responses, read once per attribute, not per cell
    both = {a: (pairs[f"left_{a}"].notna() & pairs[f"right_{a}"].notna()).to_numpy()
            for a in attributes if f"left_{a}" in pairs.columns}
    rows = []
    for key, positions in cells:
        for a in attributes:
            if a not in both:
                continue
            column = f"{{}}_{a}_assigned" if treatment == "assigned" and f"left_{a}_assigned" in pairs.columns else f"{{}}_{a}"
            needed = [c for c in (left_outcome or "label", column.format("left"), column.format("right"), "annotator_id",
                                  "policy", "policy_version", "arm", "arm_propensity", "edit_marginals")
                      if c in pairs.columns]  # only what the estimate reads: a copy per attribute
            sub = pairs[needed].iloc[positions[both[a][positions]]].reset_index(drop=True)
            base = dict(zip(by, key))
            if sub.empty:
                rows.append({**base, "attribute": a, "estimate": math.nan, "se": math.nan,
                             "ci_low": math.nan, "ci_high": math.nan, "n_labels": 0,
                             "n_on": 0, "n_off": 0, "method": "none", "estimand": estimand,
                             "se_annotator": math.nan, "n_annotators": 0, "cs_low": math.nan, "cs_high": math.nan})
                continue
            y = _side_outcomes(sub, left_outcome)
            on_l, on_r = sub[column.format("left")].to_numpy(dtype=bool), sub[column.format("right")].to_numpy(dtype=bool)
            clusters = sub["annotator_id"].to_numpy() if "annotator_id" in sub.columns else None
            if estimand == "uniform":
                w = _weights(sub)
                est, se, n_on, n_off, se_annotator = amce_design(y, on_l, on_r, w, [np.arange(len(sub))], clusters)
                method = "difference_in_means" if np.allclose(w, 1.0) else "ipw_hajek"
            else:
                # a frame without arms (a hand-built one) is taken as a design of coin flips
                w = design_weights(sub) if {"policy", "arm"} <= set(sub.columns) else np.ones(len(sub))
                strata = _strata(sub) if "policy" in sub.columns else [np.arange(len(sub))]
                est, se, n_on, n_off, se_annotator = amce_design(y, on_l, on_r, w, strata, clusters)
                method = ("difference_in_means" if np.allclose(w, 1.0) else "ipw_hajek") + (
                    "_stratified" if len(strata) > 1 else "")
            # the confidence sequence uses the larger clustered SE: one annotator's labels are not
            # assumed independent (acquisition.sequential)
            se_cs = max(se, se_annotator) if not math.isnan(se_annotator) else se
            half = sequential.half_width(se_cs, len(sub))
            rows.append({**base, "attribute": a, "estimate": est, "se": se,
                         "ci_low": est - Z95 * se, "ci_high": est + Z95 * se,
                         "n_labels": int(len(sub)), "n_on": n_on, "n_off": n_off,
                         "method": method, "estimand": estimand, "se_annotator": se_annotator,
                         "n_annotators": int(pd.Series(clusters).nunique()) if clusters is not None else 0,
                         "cs_low": est - half, "cs_high": est + half})
    return pd.DataFrame(rows, columns=[*by, *COLUMNS])
