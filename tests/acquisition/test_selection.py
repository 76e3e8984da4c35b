"""Batch selection with a uniform floor and the prompt-diversity term."""

import numpy as np
import pytest

from acquisition.selection import PromptDiversity, sample_batch, softrank_probabilities, standardise


def test_softrank_keeps_the_floor_and_the_order():
    scores = np.array([0.1, 3.0, 2.0, np.nan, 1.0])
    p = softrank_probabilities(scores, floor=0.1)
    assert p.sum() == pytest.approx(1.0)
    assert (p >= 0.1 / len(p) - 1e-12).all()
    assert list(np.argsort(-p)) == [1, 2, 4, 0, 3]  # a missing score ranks last
    with pytest.raises(ValueError):
        softrank_probabilities(scores, floor=0.0)


def test_a_batch_is_distinct_one_per_prompt_and_skips_the_labelled():
    rng = np.random.default_rng(0)
    p = softrank_probabilities(rng.random(200), floor=0.1)
    groups = np.arange(200) // 4
    exclude = np.zeros(200, dtype=bool)
    exclude[:40] = True
    idx, probs = sample_batch(p, 30, rng, groups=groups, exclude=exclude)
    assert len(idx) == 30 and len(set(idx)) == 30 and len(set(groups[idx])) == 30
    assert (idx >= 40).all()
    np.testing.assert_allclose(probs, p[idx] / p.sum())


def test_the_first_draw_follows_the_logged_probabilities():
    p = np.array([0.5, 0.3, 0.15, 0.05])
    rng = np.random.default_rng(1)
    first = np.bincount([sample_batch(p, 1, rng)[0][0] for _ in range(20_000)], minlength=4) / 20_000
    np.testing.assert_allclose(first, p, atol=0.01)


def test_diversity_prefers_prompts_far_from_the_labelled_ones():
    e = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0]])
    d = PromptDiversity(e)
    assert np.allclose(d.scores(), np.log(2.0))  # nothing labelled: all equally novel
    d.add([0])
    s = d.scores()
    assert s[0] < s[1] < s[2]
    assert np.allclose(standardise(np.ones(3)), 0.0)
