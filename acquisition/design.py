"""Preference learning over the attribute design space with BoTorch.

The design space is every on/off combination of the policy's attributes (`2^A` points of
dimension `A`), small enough for an exact ``PairwiseGP`` (Chu & Ghahramani, 2005), whose
Laplace step costs `O(n^3)` in the number of unique points. Labelled pairs become comparisons
between the two sides' edit vectors; ``AnalyticExpectedUtilityOfBestOption`` (EUBO, Lin et
al., AISTATS 2022) or ``PairwiseBayesianActiveLearningByDisagreement`` (BALD, Houlsby et al.
2011: the mutual information between the comparison's outcome and the GP) scores every pair of
design points. This runs in the worker after each
retrain, never on the request path; the ``active`` policy samples edit vectors by these scores.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DesignScores:
    """One model version's scores of every unordered pair of design points."""

    attributes: list[str]
    scores: np.ndarray  # `(2^A * (2^A - 1) / 2,)`, in ``itertools.combinations`` order
    acquisition: str = "eubo"  # which acquisition function scored them


def design_points(attributes: list[str]) -> np.ndarray:
    """All on/off combinations, `(2^A, A)` of 0/1."""
    return np.array(list(itertools.product([0.0, 1.0], repeat=len(attributes))))


DESIGN_ACQUISITIONS = ("eubo", "bald")


def design_scores(attributes: list[str], comparisons: list[tuple[frozenset, frozenset]],
                  acquisition: str = "eubo", seed: int = 0) -> np.ndarray:
    """``acquisition`` (EUBO or BALD) of every unordered pair of distinct design points,
    `(2^A * (2^A - 1) / 2,)`, in ``itertools.combinations`` order, from (winner on-set, loser
    on-set) comparisons."""
    import torch
    from botorch.acquisition.preference import (
        AnalyticExpectedUtilityOfBestOption,
        PairwiseBayesianActiveLearningByDisagreement,
    )
    from botorch.fit import fit_gpytorch_mll
    from botorch.models.pairwise_gp import PairwiseGP, PairwiseLaplaceMarginalLogLikelihood

    if acquisition not in DESIGN_ACQUISITIONS:
        raise ValueError(f"unknown design acquisition {acquisition!r}; known: {', '.join(DESIGN_ACQUISITIONS)}")
    X = torch.tensor(design_points(attributes), dtype=torch.float64)
    index = {frozenset(a for a, bit in zip(attributes, row) if bit): i for i, row in enumerate(X.tolist())}
    comps = [[index[w], index[lo]] for w, lo in comparisons if w != lo and w in index and lo in index]
    if not comps:
        raise ValueError("no comparisons between distinct design points")
    model = PairwiseGP(X, torch.tensor(comps, dtype=torch.long))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(PairwiseLaplaceMarginalLogLikelihood(model.likelihood, model))
    pairs = torch.tensor(list(itertools.combinations(range(len(X)), 2)))
    with torch.no_grad():
        if acquisition == "eubo":
            return AnalyticExpectedUtilityOfBestOption(pref_model=model)(X[pairs]).numpy().astype(float)
        torch.manual_seed(seed)
        bald = PairwiseBayesianActiveLearningByDisagreement(pref_model=model, num_samples=512)
        return bald(X[pairs]).numpy().astype(float)
