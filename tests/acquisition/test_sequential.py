"""Watching a study: a researcher who looks after every 50 labels and stops at the first interval
that excludes 0. With the fixed-sample CI a null effect is declared far more often than 5% of
the time; with the confidence sequence it is not, and the sequence covers the truth when the
study stops."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from acquisition.effects import amce
from acquisition.sequential import half_width, half_width_ratio, resolved, rho_for

PEEK_EVERY, MAX_LABELS, ANNOTATORS = 50, 1000, 20


def study(rng: np.random.Generator, beta: float) -> pd.DataFrame:
    """One study of ``MAX_LABELS`` pairs in arrival order: attribute ``a`` on each side by a coin
    flip, a true AMCE of ``beta`` (varying by annotator), 10% ties, 20 annotators."""
    annotator = rng.integers(ANNOTATORS, size=MAX_LABELS)
    own = beta + rng.normal(0, 0.05, ANNOTATORS)[annotator]  # annotators differ: clustering
    on_l, on_r = rng.random(MAX_LABELS) < 0.5, rng.random(MAX_LABELS) < 0.5
    p_left = np.clip(0.5 + own * (on_l.astype(float) - on_r), 0, 1)
    label = np.where(rng.random(MAX_LABELS) < p_left, "left", "right")
    label = np.where(rng.random(MAX_LABELS) < 0.1, "tie", label)
    return pd.DataFrame({"label": label, "left_a": on_l, "right_a": on_r, "annotator_id": annotator,
                         "left_edit_vector": '{"a": {}}', "right_edit_vector": '{"a": {}}'})


def watch(frame: pd.DataFrame) -> dict[str, tuple[int, pd.Series] | None]:
    """The first look at which each interval excludes 0, with the row of that look."""
    first: dict[str, tuple[int, pd.Series] | None] = {"ci": None, "cs": None}
    for n in range(PEEK_EVERY, MAX_LABELS + 1, PEEK_EVERY):
        row = amce(frame.iloc[:n], attributes=["a"]).iloc[0]
        for kind in ("ci", "cs"):
            if first[kind] is None and (row[f"{kind}_low"] > 0 or row[f"{kind}_high"] < 0):
                first[kind] = (n, row)
    first["last"] = (MAX_LABELS, row)
    return first


@pytest.fixture(scope="module")
def null_studies():
    rng = np.random.default_rng(2026)
    return [watch(study(rng, 0.0)) for _ in range(300)]


def test_peeking_at_the_fixed_ci_inflates_false_positives_and_the_sequence_does_not(null_studies):
    fixed = np.mean([s["ci"] is not None for s in null_studies])
    sequence = np.mean([s["cs"] is not None for s in null_studies])
    assert fixed > 0.15, fixed  # "well above 5%": about one study in four or five
    assert sequence <= 0.05, sequence
    # at the end, without peeking, the fixed CI holds its 5% (the sequence is not needed there)
    final = np.mean([(r["ci_low"] > 0) or (r["ci_high"] < 0) for _, r in (s["last"] for s in null_studies)])
    assert final <= 0.09, final


def test_the_sequence_covers_the_truth_where_the_study_stops():
    rng = np.random.default_rng(7)
    beta, covered, stopped = 0.10, 0, 0
    for _ in range(200):
        looks = watch(study(rng, beta))
        n, row = looks["cs"] if looks["cs"] is not None else looks["last"]
        stopped += looks["cs"] is not None
        covered += row["cs_low"] <= beta <= row["cs_high"]
    assert covered / 200 >= 0.95, covered
    assert stopped / 200 > 0.5, stopped  # a real effect of 0.10 is resolved within 1,000 labels most times


def test_annotator_clustering_is_reported_beside_pair_clustering_and_is_wider_when_annotators_differ():
    rng = np.random.default_rng(3)
    frame = study(rng, 0.1)
    frame["annotator_id"] = rng.integers(4, size=len(frame))  # few annotators, each with its own effect
    own = np.array([0.0, 0.3, -0.1, 0.2])[frame["annotator_id"]]
    p = np.clip(0.5 + own * (frame["left_a"].astype(float) - frame["right_a"]), 0, 1)
    frame["label"] = np.where(rng.random(len(frame)) < p, "left", "right")
    row = amce(frame, attributes=["a"]).iloc[0]
    assert row["n_annotators"] == 4 and row["se_annotator"] > row["se"]
    assert row["cs_high"] - row["cs_low"] == pytest.approx(2 * half_width(row["se_annotator"], len(frame)))


def test_the_boundary_and_the_resolution_rule():
    assert rho_for(500) == pytest.approx(math.sqrt((-2 * math.log(0.05) + math.log(-2 * math.log(0.05) + 1)) / 500))
    assert 1.0 < half_width_ratio(100) and half_width_ratio(500) < half_width_ratio(100_000)
    # by hand at t = 1,000: rho^2 = (5.9915 + log 6.9915) / 500 = 0.015872, t rho^2 = 15.872;
    # sqrt(2 * 16.872 / (1e6 * 0.015872) * log(sqrt(16.872) / 0.05)) * sqrt(1000) = 3.0615 = 1.562 * 1.96
    assert half_width(1.0 / math.sqrt(1000), 1000) == pytest.approx(3.0615 / math.sqrt(1000), rel=1e-3)
    assert half_width_ratio(1000) == pytest.approx(1.562, abs=0.002)
    assert resolved(0.01, 0.2) == "non-zero" and resolved(-0.3, -0.1) == "non-zero"
    assert resolved(-0.02, 0.03, rope=0.05) == "negligible" and resolved(-0.02, 0.08, rope=0.05) is None
    assert resolved(-0.02, 0.03) is None and resolved(math.nan, 0.1) is None
