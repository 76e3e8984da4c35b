"""Online training: retrain when enough new labels arrived, write a versioned checkpoint,
switch the serving model atomically (``models.checkpoints``).

Training only reads labels, so a crash or a kill mid-training cannot cost one. The trainer
reads the database through ``LabelSource`` (``models.training``), the few ``Store`` methods it
uses; the collector hands it a way to open one (``collector.jobs.worker.make_trainer``). It
evaluates with ``models.evaluation`` and scores the pool with ``models.scoring``.
"""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

import numpy as np

from acquisition.core.errors import ConfigError
from models.checkpoints import Checkpoints
from models.evaluation import attribute_sensitivity, flipped_attribute_accuracy, spurious_contrast
from models.reward import RewardModel, build_model, pairwise_accuracy
from models.scoring import ACQUISITIONS, design_space_scores, pair_bald_diversity, pair_disagreement, score_pool
from models.training import (
    HEADS,
    TARGETS,
    LabelSource,
    TrainingConfig,
    build_pair_data,
    load_training_config,
    set_torch_threads,
)

EMBED_CHUNK = 2048  # texts the worker embeds per poll before it checks whether a retrain is due

__all__ = [
    "ACQUISITIONS", "HEADS", "TARGETS", "LabelSource", "OnlineTrainer", "TrainingConfig", "attribute_sensitivity",
    "build_pair_data", "design_space_scores", "flipped_attribute_accuracy", "load_training_config",
    "pair_bald_diversity", "pair_disagreement", "set_torch_threads", "spurious_contrast",
]


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

    def embed_pending(self, store: LabelSource, limit: int | None = None) -> int:
        """Embed the prompts and responses (edited copies included) added since the last call,
        at most ``limit`` of them (the worker's chunk: a retrain that falls due never waits
        behind a large import; ``build_pair_data`` embeds what a retrain needs itself); returns
        how many. Progress is reported over the whole backlog, across chunks."""
        texts, last_prompt, last_response = store.texts_after(
            int(store.get_meta("embedded_prompt_id", "0") or 0),
            int(store.get_meta("embedded_response_id", "0") or 0), limit)
        if texts:
            base, backlog, spent = 0, len(texts), 0.0
            if limit is not None:  # a chunk of a backlog: count from where the last chunk ended
                pending = store.pending_texts()
                try:
                    previous = json.loads(store.get_meta("embedding_progress") or "{}")
                    if int(previous["done"]) < int(previous["total"]):
                        base, spent = int(previous["done"]), float(previous["elapsed"])
                except (ValueError, KeyError, TypeError):
                    base, spent = 0, 0.0
                backlog = base + pending
            last_write = [0.0]
            started = time.monotonic()

            def report(done: int, total: int, elapsed: float) -> None:  # where the researcher page reads it
                if done >= total or time.monotonic() - last_write[0] >= 2.0:
                    last_write[0] = time.monotonic()
                    store.set_meta("embedding_progress", json.dumps(
                        {"done": base + done, "total": backlog,
                         "elapsed": round(spent + time.monotonic() - started, 1),
                         "updated_at": time.time()}))

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
            pairs, scores, design = score_pool(model, train, rows, store, self.embedder.embed, self.config.scoring)
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

    def run(self, stop: threading.Event, poll_seconds: float | None = None, log=print,
            on_poll: Callable[[], None] | None = None) -> None:
        """Poll for new labels and retrain when due, until ``stop`` is set; errors are logged,
        never raised, so the app keeps serving the previous model. Returns at once when
        another trainer already serves this database. ``on_poll`` runs after each poll (the
        worker's stopping-rule check), its errors logged like the trainer's."""
        with self.trainer_lock(wait=False) as locked:
            if not locked:
                log(f"worker: another trainer already publishes to {self.checkpoints.folder}; this one exits.")
                return
            if cleaned := self.recover():
                log(f"worker: cleaned what an interrupted publish left: {', '.join(cleaned)}")
            self._poll(stop, poll_seconds or self.config.poll_seconds, log, on_poll)

    def _poll(self, stop: threading.Event, poll_seconds: float, log, on_poll: Callable[[], None] | None = None) -> None:
        while not stop.is_set():
            more = False
            try:
                store = self.open_store()
                try:
                    more = self.embed_pending(store, limit=EMBED_CHUNK) == EMBED_CHUNK
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
            if on_poll is not None:
                try:
                    on_poll()
                except Exception as exc:  # noqa: BLE001 - logged, the worker goes on
                    log(f"worker: {exc!r}")
            stop.wait(0.0 if more else poll_seconds)  # a backlog is embedded chunk after chunk
