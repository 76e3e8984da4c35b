"""Evaluation of a trained reward model: held-out pairs whose spurious attributes favour the
rejected response (OOD accuracy), and how far the reward moves when an editor switches its
attribute on (sensitivity)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from acquisition.editors import EDITORS, word_count
from models.reward import PairData, RewardModel, pairwise_accuracy
from models.training import LabelSource


@functools.lru_cache(maxsize=65536)
def _style_reading(text: str) -> tuple[int, int]:
    """``(spurious attributes read as on, words)`` of one text (cached: edited copies recur)."""
    on = sum(int(e.is_on(text)) for e in EDITORS.values() if not e.quality_changing and e.readable_alone)
    return on, word_count(text)


def spurious_contrast(first: str, second: str) -> int:
    """How many more spurious style attributes ``first`` shows than ``second``: the editors with
    no true effect that can be read from one text, each counted where it reads as on, plus
    verbosity (which one text cannot show) as "at least 30% more words"."""
    (on_1, words_1), (on_2, words_2) = _style_reading(first), _style_reading(second)
    return on_1 - on_2 + int(words_1 >= 1.3 * words_2) - int(words_2 >= 1.3 * words_1)


def flipped_attribute_accuracy(model: RewardModel, test: PairData, test_rows: list[dict[str, Any]],
                               test_index: np.ndarray) -> dict[str, Any]:
    """OOD accuracy on flipped-attribute pairs: held-out pairs with a winner whose spurious
    attributes favour the rejected response (``spurious_contrast(chosen, rejected) < 0``), where
    a model that learnt "more style wins" is wrong. Returns ``ood_accuracy`` (NaN without such
    pairs) and ``ood_pairs``.

    Args:
        test: the held-out pairs; test_rows / test_index: the ranked training rows and the
            positions of ``test``'s pairs among them, in ``test``'s order.
    """
    contrast = np.array([spurious_contrast(test_rows[i]["left_text"], test_rows[i]["right_text"])
                         for i in test_index], dtype=float)  # (n_test,) left minus right
    winner_sign = np.where(test.target == 1.0, 1.0, np.where(test.target == 0.0, -1.0, 0.0))
    flipped = np.flatnonzero(contrast * winner_sign < 0)
    accuracy = pairwise_accuracy(model, test.subset(flipped)) if len(flipped) else float("nan")
    return {"ood_accuracy": accuracy, "ood_pairs": int(len(flipped))}


def attribute_sensitivity(model: RewardModel, store: LabelSource, embed, n: int, seed: int) -> dict[str, Any]:
    """Mean reward change when each editor's attribute is switched on, in reward SDs, and
    Pearson(reward, length in words), over ``n`` base responses of the pool."""
    pool = store.pool_snapshot()
    pairs = [(p.text, pool.response_text[r]) for p in pool.prompts for r in p.response_ids]
    rng = np.random.default_rng(seed)
    pairs = [pairs[i] for i in rng.permutation(len(pairs))[:n]]
    if len(pairs) < 3:
        return {}
    prompts = embed([p for p, _ in pairs])
    base = model.reward(prompts, embed([r for _, r in pairs]))[0]
    sd = float(base.std()) or 1.0
    out: dict[str, Any] = {"pearson_reward_length": float(np.corrcoef(base, [word_count(r) for _, r in pairs])[0, 1])}
    for name, editor in sorted(EDITORS.items()):
        edited = model.reward(prompts, embed([editor.apply(r, i) for i, (_, r) in enumerate(pairs)]))[0]
        out[f"sensitivity_{name}"] = float((edited - base).mean() / sd)
    return out
