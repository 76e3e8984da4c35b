"""Online training: retrain when enough new labels arrived, write a versioned checkpoint,
switch the serving model atomically (``models.checkpoints``).

Training only reads labels, so a crash or a kill mid-training cannot cost one. The trainer
reads the database through ``LabelSource``, the few ``Store`` methods it uses; the collector
hands it a way to open one (``collector.serving.worker.make_trainer``).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import inspect
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from acquisition.core.config import from_dict, load_toml
from acquisition.core.errors import ConfigError
from acquisition.core.pool import PoolSnapshot
from acquisition.core.records import EditVector, PolicySpec
from acquisition.design import DesignScores, design_scores
from acquisition.editors import EDITORS, quality_neutral, word_count
from acquisition.policies import design_request
from models.checkpoints import Checkpoints
from models.reward import ModelConfig, PairData, RewardModel, build_model, pairwise_accuracy

TARGETS = {"left": 1.0, "right": 0.0, "tie": 0.5}


class LabelSource(Protocol):
    """What training reads from the database (``collector.store.Store`` has it all)."""

    def label_count(self, annotator_id: int | None = None) -> int: ...
    def training_rows(self, include_excluded: bool = False) -> list[dict[str, Any]]: ...
    def decisive_edit_vectors(self) -> list[dict[str, Any]]: ...
    def pool_snapshot(self) -> PoolSnapshot: ...
    def active_policy(self) -> PolicySpec | None: ...
    def texts_after(self, prompt_id: int, response_id: int) -> tuple[list[str], int, int]: ...
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


ACQUISITIONS = ("bald", "disagreement")


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
        if self.acquisition not in ACQUISITIONS:
            raise ConfigError(f"{where}.acquisition: must be one of {', '.join(ACQUISITIONS)}; got {self.acquisition!r}.")
        if self.diversity_weight < 0 or self.laplace_prior <= 0:
            raise ConfigError(f"{where}: diversity_weight >= 0 and laplace_prior > 0 are required.")
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


def _embedded_pool_pairs(store: LabelSource, embed):
    """Every unordered base pair of the pool as ``(prompt_id, low id, high id)``, the prompts'
    texts, and the embeddings of each pair's prompt and two responses."""
    pool = store.pool_snapshot()
    pairs = [(p.id, a, b) for p in pool.servable for i, a in enumerate(sorted(p.response_ids))
             for b in sorted(p.response_ids)[i + 1:]]
    prompt_text = {p.id: p.text for p in pool.prompts}
    if not pairs:
        return pairs, prompt_text, None, None, None
    P = embed([prompt_text[p] for p, _, _ in pairs])
    A = embed([pool.response_text[a] for _, a, _ in pairs])
    B = embed([pool.response_text[b] for _, _, b in pairs])
    return pairs, prompt_text, P, A, B


def pair_disagreement(model: RewardModel, store: LabelSource, embed) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """The ensemble's disagreement (std of P(first preferred) across members) for every
    unordered base pair of the pool: what the ``active`` policy samples by."""
    pairs, prompt_text, P, A, B = _embedded_pool_pairs(store, embed)
    if not pairs:
        return [], np.zeros(0)
    return pairs, model.preference(P, A, B)[1]


def pair_bald_diversity(model: RewardModel, train: PairData, rows: list[dict[str, Any]], store: LabelSource, embed,
                        diversity_weight: float = 1.0, prior: float = 1.0) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """BAL-PM-style scores for every unordered base pair of the pool: standardised BALD from a
    last-layer Laplace posterior of the trained head (``models.laplace``) plus
    ``diversity_weight`` times the standardised log distance from the pair's prompt to the
    nearest labelled prompt, turned into softrank weights (``acquisition.selection``) that
    sum to 1; the active policy mixes them with its uniform share."""
    from acquisition.selection import PromptDiversity, rank_weights, standardise
    from models.laplace import bald, fit_laplace, logit_moments

    pairs, prompt_text, P, A, B = _embedded_pool_pairs(store, embed)
    if not pairs:
        return [], np.zeros(0)
    score = standardise(bald(*logit_moments(fit_laplace(model, train, prior), P, A, B)))
    if diversity_weight > 0:
        prompt_ids = sorted({p for p, _, _ in pairs})
        where = {p: i for i, p in enumerate(prompt_ids)}
        diversity = PromptDiversity(embed([prompt_text[p] for p in prompt_ids]))
        diversity.add([where[r["prompt_id"]] for r in rows if r.get("prompt_id") in where])
        score = score + diversity_weight * standardise(diversity.scores()[[where[p] for p, _, _ in pairs]])
    return pairs, rank_weights(score)


def design_space_scores(store: LabelSource) -> DesignScores | None:
    """The design-space scores the active policy asks for (``Policy.design_request``: EUBO or
    BALD over its attributes) from a PairwiseGP on the labelled edit-vector comparisons; ``None``
    when it asks for none or there are no comparisons between different edit vectors yet."""
    row = store.active_policy()
    request = design_request(row["name"], row["config"]) if row else None
    if request is None:
        return None
    attributes, acquisition = request
    comparisons = []
    for r in store.decisive_edit_vectors():
        # the design point each side showed: the treatment received (a failed or inapplicable edit is off)
        left = EditVector.parse(r["left_edit_vector"]).received_on(attributes)
        right = EditVector.parse(r["right_edit_vector"]).received_on(attributes)
        comparisons.append((left, right) if r["choice"] == "left" else (right, left))
    try:
        return DesignScores(attributes, design_scores(attributes, comparisons, acquisition), acquisition)
    except ValueError:
        return None


class OnlineTrainer:
    """Retrains the reward model from a database and publishes its checkpoints.

    Args:
        open_store: opens the database (a ``LabelSource``; the trainer closes what it opens).
        checkpoints: where versions are published (``Checkpoints`` or its folder).
        embedder: an ``models.embeddings.Embedder`` (or anything with ``embed(texts)``).
    """

    def __init__(self, open_store: Callable[[], LabelSource], checkpoints: Checkpoints | str,
                 config: TrainingConfig, embedder: Any) -> None:
        config.validate()
        self.open_store, self.config, self.embedder = open_store, config, embedder
        self.checkpoints = checkpoints if isinstance(checkpoints, Checkpoints) else Checkpoints(checkpoints)
        self.checkpoints.folder.mkdir(parents=True, exist_ok=True)
        self._lock_depth = 0

    def current_version(self) -> str | None:
        return self.checkpoints.current_version()

    def load_current(self) -> RewardModel | None:
        return self.checkpoints.load_model()

    def due(self, store: LabelSource) -> bool:
        trained_on = int(store.get_meta("model_labels", "0") or 0)
        return store.label_count() - trained_on >= self.config.retrain_every

    def embed_pending(self, store: LabelSource) -> int:
        """Embed every prompt and response (edited copies included) added since the last call,
        so texts are cached soon after they enter the pool; returns how many were new."""
        texts, last_prompt, last_response = store.texts_after(
            int(store.get_meta("embedded_prompt_id", "0") or 0),
            int(store.get_meta("embedded_response_id", "0") or 0),
        )
        if texts:
            last_write = [0.0]

            def report(done: int, total: int, elapsed: float) -> None:  # where the researcher page reads it
                if done >= total or time.monotonic() - last_write[0] >= 2.0:
                    last_write[0] = time.monotonic()
                    store.set_meta("embedding_progress", json.dumps(
                        {"done": done, "total": total, "elapsed": round(elapsed, 1), "updated_at": time.time()}))

            if "on_progress" in inspect.signature(self.embedder.embed).parameters:
                self.embedder.embed(texts, on_progress=report)
            else:
                self.embedder.embed(texts)
            store.set_meta("embedded_prompt_id", str(last_prompt))
            store.set_meta("embedded_response_id", str(last_response))
        return len(texts)

    def train_once(self, on_start=None) -> dict[str, Any]:
        """Train on every label so far, evaluate, publish; returns the checkpoint's metrics.
        Waits while another trainer of this database is running."""
        with self.trainer_lock(wait=True):
            return self._train_once(on_start)

    def recover(self) -> list[str]:
        """Clean what a killed publish left (``Checkpoints.recover``); hold the trainer lock."""
        store = self.open_store()
        try:
            return self.checkpoints.recover(store.get_meta("model_version"))
        finally:
            store.close()

    def _train_once(self, on_start=None) -> dict[str, Any]:
        store = self.open_store()
        try:
            self.checkpoints.recover(store.get_meta("model_version"))
            started = time.time()
            labels_seen = store.label_count()
            rows = store.training_rows()
            data, both_bad = build_pair_data(rows, self.embedder.embed, self.config.head)
            decisive = int((data.target != 0.5).sum())
            if decisive < self.config.min_labels:
                raise ConfigError(
                    f"Only {decisive} labels with a winner; training starts at {self.config.min_labels}."
                )
            rng = np.random.default_rng(self.config.seed)
            order = rng.permutation(len(data))
            n_test = max(1, int(len(data) * self.config.holdout))
            test, train = data.subset(order[:n_test]), data.subset(order[n_test:])
            if on_start:
                on_start()
            model = build_model(self.config.model, self.config.params, data.prompt.shape[1], data.group_names)
            fit = model.fit(train, seed=self.config.seed)
            metrics = {
                "model": self.config.model, "labels": labels_seen, "train_pairs": len(train),
                "test_pairs": len(test), "both_bad": both_bad,
                "heldout_accuracy": pairwise_accuracy(model, test), **fit,
                **flipped_attribute_accuracy(model, test, [r for r in rows if r["choice"] in TARGETS],
                                             order[:n_test]),
                **attribute_sensitivity(model, store, self.embedder.embed, self.config.eval_responses, self.config.seed),
            }
            if self.config.acquisition == "bald":
                pairs, scores = pair_bald_diversity(model, train, rows, store, self.embedder.embed,
                                                    self.config.diversity_weight, self.config.laplace_prior)
            else:
                pairs, scores = pair_disagreement(model, store, self.embedder.embed)
            design = design_space_scores(store)
            metrics["train_seconds"] = round(time.time() - started, 2)
            version = self.checkpoints.publish(
                model.state(), asdict(self.config), metrics, pairs, scores, design,
                live=store.get_meta("model_version"),
                commit=lambda v: store.set_metas({"model_version": v, "model_labels": str(labels_seen)}))
            return {"version": version, **metrics}
        finally:
            store.close()

    @contextlib.contextmanager
    def trainer_lock(self, wait: bool) -> Iterator[bool]:
        """This database's trainer lock (``trainer.lock`` in the checkpoints) for the ``with`` block;
        yields ``False`` when another process holds it and ``wait`` is off. One trainer per
        database at a time, so two never pick the same version number. Re-entrant."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield True
            finally:
                self._lock_depth -= 1
            return
        with open(self.checkpoints.lock_path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            self._lock_depth = 1
            try:
                yield True
            finally:
                self._lock_depth = 0
                fcntl.flock(handle, fcntl.LOCK_UN)

    def run(self, stop: threading.Event, poll_seconds: float | None = None, log=print) -> None:
        """Poll for new labels and retrain when due, until ``stop`` is set; errors are logged,
        never raised, so the app keeps serving the previous model. Returns at once when
        another trainer already serves this database."""
        with self.trainer_lock(wait=False) as locked:
            if not locked:
                log(f"worker: another trainer already publishes to {self.checkpoints.folder}; this one exits.")
                return
            if cleaned := self.recover():
                log(f"worker: cleaned what an interrupted publish left: {', '.join(cleaned)}")
            self._poll(stop, poll_seconds or self.config.poll_seconds, log)

    def _poll(self, stop: threading.Event, poll_seconds: float, log) -> None:
        while not stop.is_set():
            try:
                store = self.open_store()
                try:
                    self.embed_pending(store)
                    due = self.due(store)
                finally:
                    store.close()
                if due:
                    result = self.train_once()
                    log(f"model {result['version']}: held-out accuracy {result['heldout_accuracy']:.3f} "
                        f"on {result['test_pairs']} pairs ({result['train_seconds']} s)")
            except ConfigError as exc:
                log(f"worker: {exc}")
            except Exception as exc:  # keep serving the previous model whatever happened
                log(f"worker: training failed, previous model stays live: {exc!r}")
            stop.wait(poll_seconds)
