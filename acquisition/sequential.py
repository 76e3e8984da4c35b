"""Anytime-valid confidence sequences for the AMCE, so a study can be watched every day and
stopped when an effect is resolved without inflating its error rate.

A fixed-sample 95% CI covers the truth with probability 0.95 at one sample size chosen in
advance. Looked at after every batch of labels, and stopped at the first CI that excludes 0, it
declares a null effect non-zero far more often than 5% of the time. A confidence sequence
``(C_t)`` covers the truth at every sample size at once, ``P(for all t: effect in C_t) >= 0.95``,
so stopping at any time, for any reason seen in the data, keeps the guarantee.

The sequence here is the asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha,
Kennedy and Ramdas ("Time-uniform central limit theory and asymptotic confidence sequences",
Annals of Statistics, 2024), built on Robbins' normal mixture, applied to the product's own
estimator (the Hajek difference in means of ``acquisition.effects``, an asymptotically linear
estimator whose influence terms give its standard error):

    C_t = estimate_t +/- sigma_t * sqrt( 2 (t rho^2 + 1) / (t^2 rho^2) * log( sqrt(t rho^2 + 1) / alpha ) ),

with ``sigma_t = se_t * sqrt(t)`` and ``t`` the number of labelled pairs. ``rho`` only moves where
the sequence is tightest, at ``t_opt`` labels (``rho_for``); any value keeps the guarantee. The
standard error used is the larger of the pair- and annotator-clustered ones, so the sequence does
not assume that one annotator's labels are independent.

The price for being valid at every ``t`` (``half_width_ratio``, with ``t_opt = 500``): the
half-width is 1.72 times the fixed-sample one at 100 labels, 1.55 at 500, 1.56 at 1,000 and 1.75
at 20,000.
"""

from __future__ import annotations

import math

ALPHA = 0.05
T_OPT = 500  # labels at which the sequence is tightest (the size of a small study)


def rho_for(t_opt: float = T_OPT, alpha: float = ALPHA) -> float:
    """The mixture's ``rho`` that makes the sequence tightest at ``t_opt`` (the paper's choice)."""
    if not (t_opt > 0 and 0 < alpha < 1):
        raise ValueError(f"t_opt must be positive and alpha in (0, 1); got {t_opt}, {alpha}")
    return math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / t_opt)


def half_width(se: float, t: int, alpha: float = ALPHA, t_opt: float = T_OPT) -> float:
    """The confidence sequence's half-width after ``t`` labelled pairs for an estimate with
    standard error ``se`` (NaN when either is missing)."""
    if t < 1 or not math.isfinite(se):
        return math.nan
    rho2 = rho_for(t_opt, alpha) ** 2
    sigma = se * math.sqrt(t)
    return sigma * math.sqrt(2 * (t * rho2 + 1) / (t * t * rho2) * math.log(math.sqrt(t * rho2 + 1) / alpha))


def half_width_ratio(t: int, alpha: float = ALPHA, t_opt: float = T_OPT) -> float:
    """The sequence's half-width over the fixed-sample CI's at ``t`` (same standard error)."""
    return half_width(1.0, t, alpha, t_opt) / (1.0 * _z(alpha))


def _z(alpha: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(1 - alpha / 2)


def resolved(cs_low: float, cs_high: float, rope: float = 0.0) -> str | None:
    """Whether an attribute's sequence settles its effect: ``"non-zero"`` once it excludes 0,
    ``"negligible"`` once it lies inside the region of practical equivalence ``[-rope, rope]``
    (``rope > 0``), else ``None`` (keep collecting)."""
    if not (math.isfinite(cs_low) and math.isfinite(cs_high)):
        return None
    if cs_low > 0 or cs_high < 0:
        return "non-zero"
    if rope > 0 and -rope <= cs_low and cs_high <= rope:
        return "negligible"
    return None
