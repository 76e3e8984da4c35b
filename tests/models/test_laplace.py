"""The last-layer Laplace head and BALD: the curvature is the Bradley-Terry Hessian, the
variance shrinks with data, BALD is a mutual information."""

import math

import numpy as np
import torch

from models.laplace import bald, fit_laplace, logit_moments, moments_from_differences, predictive_probability, trunk_features
from models.reward import ModelConfig, PairData, build_model


def _data(n: int, dim: int = 8, seed: int = 0) -> PairData:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=dim)
    prompt = rng.normal(size=(n, dim)).astype(np.float32)
    first, second = rng.normal(size=(2, n, dim)).astype(np.float32)
    p = 1 / (1 + np.exp(-((first - second) @ w)))
    return PairData(prompt, first, second, (rng.random(n) < p).astype(np.float32), np.zeros(n, dtype=np.int64))


def _model(data: PairData, members: int = 1):
    model = build_model("bt_mlp", ModelConfig(ensemble=members, hidden=6, steps=200, batch_size=64, dropout=0.0),
                        data.prompt.shape[1], ["default"])
    model.fit(data, seed=0)
    return model


def test_precision_is_the_hessian_of_the_bradley_terry_loss_in_the_head():
    data = _data(60)
    model = _model(data)
    laplace = fit_laplace(model, data, prior_precision=0.5)
    d = torch.as_tensor(trunk_features(model, data.prompt, data.first)[0] - trunk_features(model, data.prompt, data.second)[0],
                        dtype=torch.float64)
    y = torch.as_tensor(data.target, dtype=torch.float64)
    w0 = torch.as_tensor(model.net.wh.detach().numpy()[0, :, 0], dtype=torch.float64)

    def loss(w):  # summed BT negative log-likelihood plus the Gaussian prior
        return torch.nn.functional.binary_cross_entropy_with_logits(d @ w, y, reduction="sum") + 0.25 * (w @ w)

    hessian = torch.autograd.functional.hessian(loss, w0).numpy()
    np.testing.assert_allclose(np.linalg.inv(laplace.covariance[0]), hessian, rtol=1e-5, atol=1e-6)


def test_variance_and_bald_shrink_with_more_labels_and_vanish_without_uncertainty():
    small, large, probe = _data(30, seed=1), _data(600, seed=1), _data(200, seed=2)
    model = _model(large)
    few = logit_moments(fit_laplace(model, small), probe.prompt, probe.first, probe.second)
    many = logit_moments(fit_laplace(model, large), probe.prompt, probe.first, probe.second)
    np.testing.assert_allclose(few[0], many[0])  # same head, same mean
    assert many[1].mean() < 0.3 * few[1].mean()
    assert bald(*many).mean() < bald(*few).mean()
    scores = bald(*few)
    assert (scores >= 0).all() and (scores <= math.log(2) + 1e-9).all()
    assert np.allclose(bald(few[0], np.zeros_like(few[1])), 0.0, atol=1e-9)  # no posterior spread: nothing to learn


def test_bald_matches_a_monte_carlo_estimate_and_the_predictive_is_pulled_to_one_half():
    mean, var = np.array([[0.0, 2.0, -1.0]]), np.array([[4.0, 1.0, 0.25]])
    rng = np.random.default_rng(0)
    f = mean[0] + np.sqrt(var[0]) * rng.normal(size=(400_000, 3))
    p = 1 / (1 + np.exp(-f))

    def h(q):
        return -(q * np.log(q) + (1 - q) * np.log(1 - q))

    np.testing.assert_allclose(bald(mean, var), h(p.mean(0)) - h(p).mean(0), atol=2e-3)
    pred = predictive_probability(mean, var)
    assert abs(pred[1] - 0.5) < abs(1 / (1 + np.exp(-2.0)) - 0.5)


def test_members_mix_and_precomputed_differences_agree():
    data = _data(80)
    model = _model(data, members=3)
    laplace = fit_laplace(model, data)
    direct = logit_moments(laplace, data.prompt, data.first, data.second)
    d = trunk_features(model, data.prompt, data.first) - trunk_features(model, data.prompt, data.second)
    np.testing.assert_allclose(moments_from_differences(laplace, d)[1], direct[1], rtol=1e-5)
    assert direct[0].shape == (3, 80) and laplace.covariance.shape == (3, 6, 6)
