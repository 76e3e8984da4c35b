"""Training data and configuration: what the online trainer reads (``LabelSource``), how it is
configured (``TrainingConfig``, from TOML) and how labels become arrays (``build_pair_data``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from acquisition.core.config import from_dict, load_toml
from acquisition.core.errors import ConfigError
from acquisition.core.pool import PoolSnapshot
from acquisition.core.records import EditVector, PolicySpec
from acquisition.editors import quality_neutral
from models.reward import ModelConfig, PairData
from models.scoring import ScoringConfig

TARGETS = {"left": 1.0, "right": 0.0, "tie": 0.5}


class LabelSource(Protocol):
    """What training reads from the database (``collector.store.Store`` has it all)."""

    def label_count(self, annotator_id: int | None = None) -> int: ...
    def training_rows(self, include_excluded: bool = False) -> list[dict[str, Any]]: ...
    def decisive_edit_vectors(self) -> list[dict[str, Any]]: ...
    def pool_snapshot(self) -> PoolSnapshot: ...
    def active_policy(self) -> PolicySpec | None: ...
    def texts_after(self, prompt_id: int, response_id: int,
                    limit: int | None = None) -> tuple[list[str], int, int]: ...
    def pending_texts(self) -> int: ...
    def get_meta(self, key: str, default: str | None = None) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def set_metas(self, values: dict[str, str]) -> None: ...
    def close(self) -> None: ...


def set_torch_threads(threads: int) -> None:
    """Pin this process's torch thread pools: two torch users on two cores, each with the
    default pool, slow each other down several times over (measured: 4.6 s vs 42-137 s)."""
    torch.set_num_threads(max(1, threads))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work already ran in this process
        pass


def load_optimiser() -> None:
    """Import what a process's first optimiser step would import inside the first retrain:
    ``torch.optim`` loads ``torch._dynamo`` when an optimiser is first made (1.1-1.5 s of CPU
    here, about a quarter of a 10k-label retrain). The trainer calls this as it starts, while it
    has no labels to train on yet, so the first model is published that much sooner."""
    import torch._dynamo  # noqa: F401



@dataclass
class TrainingConfig:
    model: str = "bt_mlp"  # a name from models.reward.REWARD_MODELS
    retrain_every: int = 50  # retrain once this many new labels arrived
    holdout: float = 0.2  # share of labels kept out for held-out accuracy
    seed: int = 0
    eval_responses: int = 40  # base responses edited per attribute for reward sensitivity
    min_labels: int = 20  # no model before this many labels with a winner
    poll_seconds: float = 10.0  # how often the worker looks for new labels and texts
    # what a per-group model (multihead, adversarial) takes as its head: "annotator_group", or
    # "objective", the study objective each pair was shown with (randomised or fixed)
    head: str = "annotator_group"
    # the embedding back-end: "torch", "onnx" (same vectors, faster) or "onnx_int8" (per-channel
    # int8, about 0.99 cosine to torch, faster still; its vectors are cached apart)
    embedder: str = "torch"
    # what the active policy samples base pairs by: "bald" (BALD from a last-layer Laplace head,
    # plus diversity_weight times BAL-PM's prompt-diversity term, published as softrank weights;
    # the causal benchmark's active_protocol: +3.1 points over random at 1,600 labels) or
    # "disagreement" (the ensemble's spread of P(first preferred))
    acquisition: str = "bald"
    diversity_weight: float = 0.0
    laplace_prior: float = 1.0
    params: ModelConfig = field(default_factory=ModelConfig)

    @property
    def scoring(self) -> ScoringConfig:
        """How the pool is scored for the active policy: configured here, and only here."""
        return ScoringConfig(self.acquisition, self.diversity_weight, self.laplace_prior)

    def validate(self, where: str = "training") -> None:
        from models.reward import REWARD_MODELS

        if self.model not in REWARD_MODELS:
            raise ConfigError(f"{where}.model: unknown reward model {self.model!r}; known: {', '.join(sorted(REWARD_MODELS))}.")
        if not 0 < self.holdout < 0.9:
            raise ConfigError(f"{where}.holdout: must be in (0, 0.9); got {self.holdout}.")
        if self.retrain_every < 1:
            raise ConfigError(f"{where}.retrain_every: must be at least 1; got {self.retrain_every}.")
        if self.head not in HEADS:
            raise ConfigError(f"{where}.head: must be one of {', '.join(HEADS)}; got {self.head!r}.")
        from models.embeddings import BACKENDS

        if self.embedder not in BACKENDS:
            raise ConfigError(f"{where}.embedder: must be one of {', '.join(BACKENDS)}; got {self.embedder!r}.")
        self.scoring.validate(where)
        if not 0 < self.poll_seconds <= 3600:
            raise ConfigError(f"{where}.poll_seconds: must be in (0, 3600]; got {self.poll_seconds}.")


def load_training_config(path: str | None) -> TrainingConfig:
    return TrainingConfig() if path is None else from_dict(TrainingConfig, load_toml(path), str(path))


HEADS = ("annotator_group", "objective")


def build_pair_data(rows: list[dict[str, Any]], embed, head: str = "annotator_group") -> tuple[PairData, int]:
    """Labels -> arrays. Both-bad labels are counted and kept out of the ranking.

    Args:
        rows: ``Store.training_rows()``.
        embed: ``texts -> (n, d)`` array (``Embedder.embed``).
        head: the row key a per-group model's head is (``annotator_group`` or ``objective``;
            pairs shown with no objective share the head ``"none"``).

    Returns:
        ``(data, both_bad_count)``.
    """
    ranked = [r for r in rows if r["choice"] in TARGETS]
    both_bad = len(rows) - len(ranked)
    texts = sorted({r[k] for r in ranked for k in ("prompt", "left_text", "right_text",
                                                    "left_base_text", "right_base_text")})
    vectors = embed(texts) if texts else np.zeros((0, 384), np.float32)
    index = {t: i for i, t in enumerate(texts)}

    def col(key: str) -> np.ndarray:
        return vectors[[index[r[key]] for r in ranked]] if ranked else np.zeros((0, vectors.shape[1]), np.float32)

    def head_of(r: dict[str, Any]) -> str:
        return str(r.get(head) or "none")

    groups = sorted({head_of(r) for r in ranked}) or ["default"]
    data = PairData(
        prompt=col("prompt"), first=col("left_text"), second=col("right_text"),
        target=np.array([TARGETS[r["choice"]] for r in ranked], np.float32),
        group=np.array([groups.index(head_of(r)) for r in ranked], np.int64),
        propensity=np.array([r["arm_propensity"] for r in ranked], np.float64),
        same_base=np.array([bool(r["same_base"]) for r in ranked]),
        first_parent=col("left_base_text"), second_parent=col("right_base_text"), group_names=groups,
        first_neutral=np.array([quality_neutral(EditVector.parse(r.get("left_edit_vector"))) for r in ranked], bool),
        second_neutral=np.array([quality_neutral(EditVector.parse(r.get("right_edit_vector"))) for r in ranked], bool),
    )
    return data, both_bad
