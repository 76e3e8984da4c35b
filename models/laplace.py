"""Uncertainty for active acquisition: a last-layer Laplace approximation of a Bradley-Terry
reward model, and BALD from it.

The trunk of a trained reward model is kept fixed and its reward head is treated as Bayesian:
for member ``e``, with ``d = h(x, y1) - h(x, y2)`` the difference of the trunk features of
the two responses and ``p = sigmoid(w·d)`` the model's preference, the posterior over the
head's weights is approximated by a Gaussian at the trained weights with precision
``prior_precision * I + sum_i p_i (1 - p_i) d_i d_iᵀ`` (the generalised Gauss-Newton Hessian of
the Bradley-Terry loss; Daxberger et al., 2021, "Laplace Redux"). A candidate pair's
preference logit is then normal with mean ``w·d`` and variance ``dᵀ Σ d``; with several
members the predictive is their equal mixture.

BALD (Houlsby et al., 2011) is the mutual information between the label and the head's
weights, ``H[E p] - E[H[p]]``, estimated with fixed Gauss-Hermite nodes, so scores are
deterministic: high where the model's preference is uncertain *because of what it has not
seen*, not where the pair is a coin flip for everyone (a pair of equal responses has a high
predictive entropy but little BALD once the model has seen such pairs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.reward import PairData, RewardModel


@dataclass
class LastLayerLaplace:
    """The posterior covariance of each member's reward head, `(E, hidden, hidden)`."""

    model: RewardModel
    covariance: np.ndarray
    prior_precision: float


@torch.inference_mode()
def trunk_features(model: RewardModel, prompt: np.ndarray, response: np.ndarray,
                   group: np.ndarray | None = None) -> np.ndarray:
    """The trunk's last hidden layer for each (prompt, response), `(E, n, hidden)`."""
    p = torch.as_tensor(prompt, dtype=torch.float32)
    r = torch.as_tensor(response, dtype=torch.float32)
    g = None if group is None else torch.as_tensor(group, dtype=torch.long)
    if model.conditioned and g is None:
        g = torch.zeros(len(p), dtype=torch.long)
    model.net.eval()
    _, h = model.net(model._input(p, g), r)
    return h.numpy()


def _head(model: RewardModel, group: np.ndarray | None, n: int) -> np.ndarray:
    """Each pair's head weights, `(E, n, hidden)` (the group's head, or the heads' mean)."""
    w = model.net.wh.detach().numpy()  # `(E, hidden, heads)`
    if model.per_group and group is not None:
        return np.transpose(w[:, :, np.asarray(group)], (0, 2, 1))
    return np.broadcast_to(w.mean(axis=2)[:, None, :], (w.shape[0], n, w.shape[1]))


def fit_laplace(model: RewardModel, data: PairData, prior_precision: float = 1.0) -> LastLayerLaplace:
    """Laplace posterior of the reward head given the labelled pairs the model was trained on."""
    if prior_precision <= 0:
        raise ValueError("prior_precision must be positive")
    group = data.group if model.per_group or model.conditioned else None
    d = trunk_features(model, data.prompt, data.first, group) - trunk_features(model, data.prompt, data.second, group)
    w = _head(model, group, len(data))
    p = 1.0 / (1.0 + np.exp(-np.einsum("enh,enh->en", d, w)))
    curvature = p * (1.0 - p)  # `(E, n)`
    hidden = d.shape[-1]
    precision = prior_precision * np.eye(hidden)[None] + np.einsum("en,enh,enk->ehk", curvature, d, d)
    return LastLayerLaplace(model, np.linalg.inv(precision), prior_precision)


def logit_moments(laplace: LastLayerLaplace, prompt: np.ndarray, first: np.ndarray, second: np.ndarray,
                  group: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each member's preference logit for (first over second), `(E, n)` each."""
    model = laplace.model
    g = group if model.per_group or model.conditioned else None
    d = trunk_features(model, prompt, first, g) - trunk_features(model, prompt, second, g)
    mean = np.einsum("enh,enh->en", d, _head(model, g, len(prompt)))
    var = np.einsum("enh,ehk,enk->en", d, laplace.covariance, d)
    return mean, np.maximum(var, 0.0)


_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(32)  # probabilists' Hermite: E over N(0, 1)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def _entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def bald(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """BALD of a Bernoulli label whose logit is an equal mixture of normals (one per member),
    `(E, n)` -> `(n,)`, in nats (between 0 and log 2)."""
    logits = mean[..., None] + np.sqrt(var)[..., None] * _NODES  # `(E, n, nodes)`
    probs = 1.0 / (1.0 + np.exp(-logits))
    expected_p = (probs * _WEIGHTS).sum(axis=-1).mean(axis=0)  # `(n,)`
    expected_h = (_entropy(probs) * _WEIGHTS).sum(axis=-1).mean(axis=0)
    return np.maximum(_entropy(expected_p) - expected_h, 0.0)


def predictive_probability(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """P(first preferred) under the Laplace predictive, `(n,)`."""
    logits = mean[..., None] + np.sqrt(var)[..., None] * _NODES
    return ((1.0 / (1.0 + np.exp(-logits))) * _WEIGHTS).sum(axis=-1).mean(axis=0)


def moments_from_differences(laplace: LastLayerLaplace, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """As ``logit_moments``, from precomputed trunk-feature differences `(E, n, hidden)` (for
    scoring many pairs that share responses: compute each response's features once)."""
    mean = np.einsum("enh,enh->en", d, _head(laplace.model, None, d.shape[1]))
    var = np.einsum("enh,ehk,enk->en", d, laplace.covariance, d)
    return mean, np.maximum(var, 0.0)
