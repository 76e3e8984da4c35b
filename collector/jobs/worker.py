"""The reward-model trainer beside the app, in a process of its own.

Training and embedding are CPU-heavy; in the app's process they would take the cores (and the
GIL) from every annotator's next pair. ``spawn_worker`` starts ``python -m collector worker``
as a child of the app at a lower CPU priority, with one torch thread, and the child exits when
the app does (it watches its parent's process id).
"""

from __future__ import annotations

import atexit
import functools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acquisition.core.errors import ConfigError
from collector.store import Store

if TYPE_CHECKING:
    from models.online import OnlineTrainer, TrainingConfig

WORKER_NICE = 10  # added to the app's niceness: annotators' requests come first
# seconds the app's trainer waits before it loads torch and the embedding model and starts on its
# backlog: it is started by the first page the app draws, and its boot (2 s of CPU, then
# embedding) drew the first visitor's page 1.56x as slowly as a bare Streamlit page, against
# 1.3x with no trainer (bench_boot, 2026-12-03)
WORKER_START_DELAY = 10.0
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "TOKENIZERS_PARALLELISM": "false"}


def spawn_worker(db_path: str | Path, config_path: str | None = None,
                 log_path: str | Path | None = None, start_delay: float = WORKER_START_DELAY) -> subprocess.Popen:
    """Start the trainer for ``db_path`` as a child process; it is stopped when this process exits.

    Args:
        config_path: a training TOML (``models/examples/training.toml``), default built in.
        log_path: where the worker's output goes (default: beside the database, ``worker.log``).
        start_delay: seconds the trainer waits before it loads torch and starts (``WORKER_START_DELAY``).
    """
    db_path = Path(db_path).resolve()  # the child may not share this process's working directory
    command = [sys.executable, "-m", "collector", "worker", "--db", str(db_path), "--parent-pid", str(os.getpid()),
               "--start-delay", str(start_delay)]
    if config_path:
        command += ["--config", str(config_path)]
    log_path = Path(log_path) if log_path else db_path.parent / "worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **THREAD_ENV},
            preexec_fn=lambda: os.nice(WORKER_NICE),  # noqa: PLW1509 (no threads touched before exec)
        )
    atexit.register(_stop, process)
    return process


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


def exit_with_parent(parent_pid: int, check_seconds: float = 1.0) -> None:
    """In the worker: a daemon thread that ends this process as soon as ``parent_pid`` is gone
    (also mid-training, where the polling loop would not notice for a while)."""

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(0)
            time.sleep(check_seconds)

    threading.Thread(target=watch, name="deconfound-parent-watch", daemon=True).start()


def make_trainer(db_path: str | Path, config: TrainingConfig | None = None, progress: bool = False) -> OnlineTrainer:
    """The trainer of a database, with the embedding cache in its checkpoint folder."""
    from models.embeddings import Embedder
    from models.online import OnlineTrainer, TrainingConfig

    store = Store(db_path, create=False)
    try:
        checkpoints = store.checkpoints()
    finally:
        store.close()
    for folder in (checkpoints.folder, *checkpoints.folder.parents):
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"{folder}: is a file, not the checkpoint folder {checkpoints.folder} needs "
                              "(move it, or set another with `deconfound init --checkpoints DIR`).")
    checkpoints.folder.mkdir(parents=True, exist_ok=True)
    config = config or TrainingConfig()
    embedder = Embedder(cache_path=checkpoints.embedding_cache, backend=config.embedder)
    if progress:
        plain = embedder.embed

        def embed_with_progress(texts: Sequence[str], progress: bool = False, on_progress=None) -> Any:
            return plain(texts, progress=progress or len(texts) > 200, on_progress=on_progress)

        embedder.embed = embed_with_progress  # type: ignore[method-assign]
    return OnlineTrainer(functools.partial(Store, db_path), checkpoints, config, embedder)


def embed_new_texts(db_path: str | Path, progress: bool = True,
                    estimate: Callable[[int, float], None] | None = None) -> int:
    """Embed every prompt and response not embedded yet into the database's embedding cache
    (the online trainer's ``embed_pending``), printing a progress line; returns how many.
    ``estimate(total, texts_per_second)`` is called first, with the rate measured on a sample."""
    store = Store(db_path)
    try:
        trainer = make_trainer(db_path, progress=progress)
        if estimate is not None:
            texts, _, _ = store.texts_after(int(store.get_meta("embedded_prompt_id", "0") or 0),
                                            int(store.get_meta("embedded_response_id", "0") or 0), limit=65)
            trainer.embedder.embed(texts[:1])  # loads the model outside the timing
            sample = texts[1:]
            started = time.perf_counter()
            trainer.embedder.embed(sample)  # cached: the full run does not embed them again
            estimate(store.pending_texts(), max(len(sample), 1) / max(time.perf_counter() - started, 1e-9))
        return trainer.embed_pending(store)
    finally:
        store.close()


class StopRuleCheck:
    """The worker's check of the study's stopping rule (``collector.serving.stopping``), run after
    each poll but estimated only when 50 more labels have come in (or at ``max_labels``): the
    confidence sequences allow a look at any time, and this keeps the worker's CPU for training."""

    EVERY = 50

    def __init__(self, db_path: str | Path, log: Callable[[str], None] = print) -> None:
        self.db_path, self.log = db_path, log
        self.last = -self.EVERY

    def __call__(self) -> None:
        from collector.serving.stopping import check_stopping, has_rule
        from collector.serving.study import stopped, study_config

        store = Store(self.db_path)
        try:
            config = study_config(store)
            if not has_rule(config) or stopped(store):
                return
            labels = store.label_count()
            if labels - self.last < self.EVERY and not (config.max_labels and labels >= config.max_labels):
                return
            self.last = labels
            state = check_stopping(store)
            if state.stopped:
                self.log(f"worker: the study stopped by its rule at {state.labels:,} labels: {state.reason}")
        finally:
            store.close()
