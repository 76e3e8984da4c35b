"""The Arena export is usable by Arena's own rating code: a Bradley-Terry fit in the form of
FastChat's ``rating_systems.py`` (``preprocess_for_bt`` / ``bt_loss_and_grad`` / ``fit_bt``,
written out here from the published formula) gives finite, distinct ratings per arm in the
direction of the true effect, and its style control reads ``conv_metadata``."""

import math

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

from acquisition.core.config import to_dict
from acquisition.policies import RandomisedAttributesConfig
from collector.io.frames import arena_frame, pairs_frame
from collector.jobs.simulate import SimulatedAnnotatorConfig, simulate
from collector.store import Store
from collector.store.create import load_demo_pool

STYLE = ["sum_assistant_a_tokens", "header_count_a", "list_count_a", "bold_count_a",
         "sum_assistant_b_tokens", "header_count_b", "list_count_b", "bold_count_b"]


def bradley_terry(battles: pd.DataFrame) -> pd.Series:
    """FastChat's compute_bt: unique (a, b, outcome) with counts, L-BFGS on the weighted BT
    loss with alpha = ln 10, ratings scaled by 400 around 1000."""
    models, index = np.unique(pd.concat([battles.model_a, battles.model_b]), return_inverse=True)
    n = len(battles)
    schedule = np.column_stack([index[:n], index[n:], np.ones(n, dtype=int)])
    schedule[battles.winner.to_numpy() == "model_a", 2] = 2
    schedule[battles.winner.to_numpy() == "model_b", 2] = 0
    unique, weights = np.unique(schedule, return_counts=True, axis=0)
    matchups, outcomes = unique[:, :2], unique[:, 2] / 2.0
    alpha = math.log(10.0)

    def loss_and_grad(r):
        p = expit(alpha * (r[matchups[:, 0]] - r[matchups[:, 1]]))
        loss = -((np.log(p) * outcomes + np.log(1 - p) * (1 - outcomes)) * weights).sum()
        g = -alpha * (outcomes - p) * weights
        grad = np.zeros_like(r)
        np.add.at(grad, matchups[:, 0], g)
        np.add.at(grad, matchups[:, 1], -g)
        return loss, grad

    result = minimize(loss_and_grad, np.zeros(len(models)), jac=True, method="L-BFGS-B",
                      options={"maxiter": 100, "gtol": 1e-6})
    return pd.Series(result.x * 400 + 1000, index=models).sort_values(ascending=False)


def style_features(battles: pd.DataFrame) -> np.ndarray:
    """FastChat's preprocess_for_style: (a - b) / (a + b + 1) per element, standardised."""
    def value(meta, key):
        v = meta[key]
        return v if isinstance(v, int) else sum(v.values())

    vec = np.array([[value(m, k) for m in battles.conv_metadata] for k in STYLE], dtype=float)
    np.seterr(invalid="ignore")  # an element no response has (headers here) has SD 0, as in FastChat
    diff, total = vec[:4] - vec[4:], vec[:4] + vec[4:] + 1
    diff = diff / total
    return ((diff - diff.mean(axis=1, keepdims=True)) / diff.std(axis=1, keepdims=True)).T


def test_bradley_terry_on_the_arena_export_rates_each_arm(tmp_path):
    store = Store(str(tmp_path / "arena.db"))
    store.add_pool(load_demo_pool(), source="demo")
    store.activate_policy("randomised_attributes",
                          to_dict(RandomisedAttributesConfig(attributes=["emoji", "list_format"])))
    simulate(store, labels=1500, seed=3, config=SimulatedAnnotatorConfig(attribute_effects={"list_format": 1.5}))
    pairs = pairs_frame(store)
    store.close()
    battles = arena_frame(pairs, "arm")
    assert set(battles.model_a) | set(battles.model_b) == {"base", "emoji", "list_format", "emoji+list_format"}
    ratings = bradley_terry(battles)
    assert np.isfinite(ratings).all() and ratings.nunique() == 4
    assert ratings["list_format"] > ratings["base"] + 50  # the true effect, on Arena's scale
    assert ratings["emoji+list_format"] > ratings["emoji"] + 50
    features = style_features(battles)
    assert features.shape == (len(battles), 4) and np.isfinite(features[:, [0, 2]]).all()
    # lists written by the editor show up in the list counts style control reads
    lists = battles.conv_metadata.map(lambda m: sum(m["list_count_a"].values()))
    shown = battles.a_list_format.fillna(False).astype(bool)  # null: a list does not apply to the response
    assert lists[shown].mean() > lists[~shown].mean()
    assert set(battles.language) == {"unknown"}


def test_the_arena_card_names_the_style_elements_that_never_vary():
    import pandas as pd

    from collector.io.card import style_control_section
    from collector.io.frames import conv_metadata

    texts = [("**Yes**, short.", "A longer answer with more words in it."), ("- one\n- two", "Plain."),
             ("No.", "**Bold** and more")]
    frame = pd.DataFrame({"conv_metadata": [conv_metadata("q", a, b) for a, b in texts]})
    text = style_control_section(frame)
    assert "| header_count | 0.000 | no: leave it out |" in text
    assert ('style_elements=["sum_assistant_a_tokens", "list_count_a", "bold_count_a", "sum_assistant_b_tokens", '
            '"list_count_b", "bold_count_b"], apply_ratio=[1, 0, 0]') in text
