"""The checkpoint directory: the one module that knows where models live and how they are laid out.

::

    <database folder>/models/
        CURRENT                     the live version, e.g. "v7" (replaced atomically)
        v7/model.pt                 RewardModel.state()
        v7/config.json              the TrainingConfig it was trained with
        v7/metrics.json             held-out and OOD accuracy, sensitivities, timings
        v7/acquisition_scores.npz   the ensemble's disagreement per base pair (active policy)
        v7/design_scores.npz        EUBO/BALD over the attribute design space (active policy)
        embeddings.sqlite           the embedding cache
        trainer.lock                held by the one trainer of this database

A version is written to a temporary folder and renamed into place; ``CURRENT`` is replaced
with ``os.replace`` only after that, so a reader sees the previous model until the new one is
whole. Nothing here imports torch at module level (the dashboard reads metrics without it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.design import DesignScores
from acquisition.policies.active import AcquisitionScores

CURRENT = "CURRENT"
MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
SCORES_FILE = "acquisition_scores.npz"
DESIGN_FILE = "design_scores.npz"
EMBEDDING_CACHE = "embeddings.sqlite"
LOCK_FILE = "trainer.lock"


class Checkpoints:
    """Read and publish the versioned checkpoints in ``folder``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @classmethod
    def for_database(cls, db_path: str | Path) -> Checkpoints:
        """The checkpoints of a database: ``models/`` beside it (``data/models/`` by default)."""
        return cls(Path(db_path).resolve().parent / "models")

    @property
    def embedding_cache(self) -> Path:
        return self.folder / EMBEDDING_CACHE

    @property
    def lock_path(self) -> Path:
        return self.folder / LOCK_FILE

    # ------------------------------------------------------------------ reading
    def current_version(self) -> str | None:
        pointer = self.folder / CURRENT
        return pointer.read_text().strip() or None if pointer.exists() else None

    def versions(self) -> list[str]:
        """Published versions, oldest first."""
        found = [p.name for p in self.folder.glob("v*") if p.name[1:].isdigit() and p.is_dir()]
        return sorted(found, key=lambda v: int(v[1:]))

    def metrics(self, version: str) -> dict[str, Any]:
        return json.loads((self.folder / version / METRICS_FILE).read_text())

    def all_metrics(self) -> list[dict[str, Any]]:
        """``metrics.json`` of every version that has one, with its ``version``, oldest first."""
        out = []
        for version in self.versions():
            if (self.folder / version / METRICS_FILE).exists():
                out.append({"version": version, **self.metrics(version)})
        return out

    def load_model(self, version: str | None = None) -> Any:
        """The ``RewardModel`` of ``version`` (default: the live one), or ``None`` if there is none."""
        import torch

        from models.reward import RewardModel

        version = version or self.current_version()
        if version is None:
            return None
        return RewardModel.from_state(torch.load(self.folder / version / MODEL_FILE, weights_only=False))

    def acquisition_scores(self, version: str | None) -> AcquisitionScores | None:
        """The ensemble's disagreement stored with ``version``, or ``None``."""
        if version is None or not (path := self.folder / version / SCORES_FILE).exists():
            return None
        data = np.load(path)
        return AcquisitionScores(version, {
            (int(p), int(min(a, b)), int(max(a, b))): float(s) for (p, a, b), s in zip(data["pairs"], data["scores"])
        })

    def design_scores(self, version: str | None) -> DesignScores | None:
        """The design-space scores stored with ``version``, or ``None``."""
        if version is None or not (path := self.folder / version / DESIGN_FILE).exists():
            return None
        data = np.load(path)
        acquisition = str(data["acquisition"]) if "acquisition" in data.files else "eubo"
        return DesignScores([str(a) for a in data["attributes"]], np.asarray(data["scores"], dtype=float), acquisition)

    # ------------------------------------------------------------------ publishing
    def publish(self, model_state: dict[str, Any], config: dict[str, Any], metrics: dict[str, Any],
                pairs: list[tuple[int, int, int]], pair_scores: np.ndarray,
                design: DesignScores | None = None) -> str:
        """Write the next version whole, then point ``CURRENT`` at it; returns the version."""
        import torch

        self.folder.mkdir(parents=True, exist_ok=True)
        existing = [int(v[1:]) for v in self.versions()]
        version = f"v{max(existing, default=0) + 1}"
        tmp = self.folder / f".tmp-{version}-{os.getpid()}"
        tmp.mkdir()
        torch.save(model_state, tmp / MODEL_FILE)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
        np.savez(tmp / SCORES_FILE, pairs=np.array(pairs, dtype=np.int64).reshape(-1, 3),
                 scores=np.asarray(pair_scores, dtype=np.float64))
        if design is not None:
            np.savez(tmp / DESIGN_FILE, attributes=np.array(design.attributes), scores=design.scores,
                     acquisition=np.array(design.acquisition))
        tmp.rename(self.folder / version)
        pointer = self.folder / f".{CURRENT}.tmp"
        pointer.write_text(version)
        os.replace(pointer, self.folder / CURRENT)
        return version
