"""Plan a study by the effects it must detect: the labels needed for an attribute's AMCE of a given
size at a given power, and the smallest effect a budget can detect.

The AMCE estimator (``acquisition.effects``) is a difference in means over both profiles of each
labelled pair; its variance is ``sigma^2 / n`` for ``n`` independent labelled pairs, where
``sigma`` depends on how often the design switches the attribute on (``p_on``, per side) and on
the share of ties (a tie counts half). ``unit_sd`` computes ``sigma`` with the product's own
estimator on a large simulated design, so the planner and the dashboard use the same formula.

Labels are not independent: one annotator's labels share that annotator's taste. The design
effect ``deff = 1 + (m - 1) * icc`` (``m`` labels per annotator, ``icc`` the intraclass
correlation of the estimator's per-label terms within an annotator) inflates the variance, as
annotator-clustered standard errors do (``se_annotator``). The ICC seen so far comes from the
study's own effects table: ``deff_seen = (se_annotator / se)^2`` at ``m_seen`` labels per
annotator gives ``icc = (deff_seen - 1) / (m_seen - 1)`` (``icc_from_effects``). Labels that do
not enter the estimate (skips, both-bad answers, quality-control items; ``drop_rate``) are paid
for too. With an overlap of ``k`` (each item labelled by ``k`` annotators), ``k`` labels of one
item are treated as ``1 + (k - 1) * item_icc`` effective ones.

Power is for the fixed-sample two-sided test at level ``alpha`` at the planned size. A study
watched continuously and stopped by its confidence sequence (``acquisition.sequential``) needs
more: the sequence is 1.5-1.8 times as wide as the fixed-sample CI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


@dataclass(frozen=True)
class Design:
    """What the planner needs to know about a study (defaults: a fresh study)."""

    p_on: float = 0.5  # the design's marginal probability that the attribute is on, per side
    tie_rate: float = 0.1  # share of labelled pairs answered "tie"
    drop_rate: float = 0.05  # share of labels that do not enter (skips, both bad, QC, excluded)
    icc: float = 0.0  # within-annotator intraclass correlation of the estimator's terms
    labels_per_annotator: float = 100.0
    overlap: int = 1  # annotators per item
    item_icc: float = 0.0  # correlation of the labels of one item by different annotators
    randomised_share: float = 1.0  # share of labelled pairs that randomise the attribute (a mixture's arms)

    def validate(self) -> None:
        checks = [("p_on", 0 < self.p_on < 1, "between 0 and 1"),
                  ("tie_rate", 0 <= self.tie_rate < 1, "in [0, 1)"),
                  ("drop_rate", 0 <= self.drop_rate < 1, "in [0, 1)"),
                  ("icc", 0 <= self.icc <= 1, "in [0, 1]"),
                  ("labels_per_annotator", self.labels_per_annotator >= 1, "at least 1"),
                  ("overlap", self.overlap >= 1, "at least 1"),
                  ("item_icc", 0 <= self.item_icc <= 1, "in [0, 1]"),
                  ("randomised_share", 0 < self.randomised_share <= 1, "in (0, 1]")]
        for name, ok, what in checks:
            value = getattr(self, name)
            if not ok or (isinstance(value, float) and not math.isfinite(value)):
                raise ValueError(f"{name}: must be {what}; got {value}")

    def design_effect(self) -> float:
        """How many times the variance of independent labels the clustering makes it: by annotator
        (``m`` labels each) and by item (``k`` labels each)."""
        return (1 + (self.labels_per_annotator - 1) * self.icc) * (1 + (self.overlap - 1) * self.item_icc)


def unit_sd(p_on: float, tie_rate: float, n: int = 200_000, seed: int = 0) -> float:
    """``sigma``: the standard error of the product's AMCE estimator times sqrt(labelled pairs),
    on a simulated design with no effect (choices at 0.5; ties at ``tie_rate``)."""
    from acquisition.effects import amce_one

    rng = np.random.default_rng(seed)
    on_l, on_r = rng.random(n) < p_on, rng.random(n) < p_on
    y = np.where(rng.random(n) < tie_rate, 0.5, (rng.random(n) < 0.5).astype(float))
    _, se, _, _ = amce_one(y, on_l, on_r, np.ones(n))
    return se * math.sqrt(n)


def _z(alpha: float, power: float) -> float:
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha and power must be in (0, 1); got {alpha}, {power}")
    return NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)


def labels_needed(effect: float, design: Design = Design(), power: float = 0.8, alpha: float = 0.05,
                  annotators: int | None = None) -> int:
    """Labels to collect (drops included) to detect an AMCE of ``effect`` with ``power``.

    With ``annotators``, each labels an equal share, so the labels per annotator grow with the
    answer (``design.labels_per_annotator`` is ignored): ``n = c (1 - icc) / (1 - c icc / A)``
    with ``c`` the labels needed without clustering. Where ``c icc / A >= 1`` no number of labels
    from these annotators reaches the power (``ValueError``: add annotators)."""
    if not (math.isfinite(effect) and effect != 0):
        raise ValueError(f"effect: must be a non-zero number; got {effect}")
    design.validate()
    sigma = unit_sd(design.p_on, design.tie_rate)
    effective = (_z(alpha, power) * sigma / abs(effect)) ** 2  # independent labelled pairs
    effective /= design.randomised_share  # only those pairs enter the attribute's estimate
    item = 1 + (design.overlap - 1) * design.item_icc
    if annotators is None:
        return math.ceil(effective * design.design_effect() / (1 - design.drop_rate))
    if annotators < 1:
        raise ValueError(f"annotators: must be at least 1; got {annotators}")
    c = effective * item / (1 - design.drop_rate)
    kept = 1 - design.drop_rate  # labels per annotator that enter: n (1 - drop) / A
    if c * design.icc * kept / annotators >= 1:
        raise ValueError(f"{annotators} annotators cannot detect an effect of {effect:g} at {power:.0%} power "
                         f"with an intraclass correlation of {design.icc:.3f}: add annotators")
    return math.ceil(c * (1 - design.icc) / (1 - c * design.icc * kept / annotators))


def detectable_effect(labels: int, design: Design = Design(), power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest AMCE that ``labels`` labels (drops included) detect with ``power``."""
    if labels < 1:
        raise ValueError(f"labels: must be at least 1; got {labels}")
    design.validate()
    sigma = unit_sd(design.p_on, design.tie_rate)
    effective = labels * (1 - design.drop_rate) * design.randomised_share / design.design_effect()
    return _z(alpha, power) * sigma / math.sqrt(effective)


def icc_from_effects(se_pair: float, se_annotator: float, labels_per_annotator: float) -> float:
    """The within-annotator ICC implied by a study's two standard errors so far
    (``(se_annotator / se)^2 = 1 + (m - 1) icc``); 0 where annotator clustering adds nothing."""
    if not (se_pair > 0 and math.isfinite(se_annotator)) or labels_per_annotator <= 1:
        return 0.0
    return min(1.0, max(0.0, ((se_annotator / se_pair) ** 2 - 1) / (labels_per_annotator - 1)))
