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

Publishing is one atomic step as every reader sees it: the database's ``model_version`` is the
truth (serving, the dashboard and exports read it), and it moves in one transaction only after the
version's folder is whole on disk (written to ``.tmp-vN-<pid>``, fsynced, renamed). ``CURRENT``
mirrors it for tools that read files. A kill at any step leaves at most a temporary folder, an
orphan ``vN`` newer than the database's version, or a stale ``CURRENT``; ``recover`` (run by every
trainer before it publishes, under the trainer lock) removes the first two and rewrites the third,
so the pointer, the database and the folders agree and the next version number is free.

The folder is ``models/`` beside the database (``data/models/`` by default), or
``<stem>.models/`` when that ``models/`` is a Python package (a database in the repository root),
or what the database's ``checkpoint_dir`` setting names. Nothing here imports torch at module
level (the dashboard reads metrics without it).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
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
    def for_database(cls, db_path: str | Path, configured: str | None = None) -> Checkpoints:
        """The checkpoints of a database: ``configured`` (its ``checkpoint_dir`` setting, relative
        to the database's folder) or ``models/`` beside it, unless that is a Python package."""
        folder = Path(db_path).resolve().parent
        if configured:
            return cls(folder / Path(configured).expanduser())
        beside = folder / "models"
        if (beside / "__init__.py").exists():
            return cls(folder / f"{Path(db_path).stem}.models")
        return cls(beside)

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
        return AcquisitionScores(version, pairs=data["pairs"], values=data["scores"])

    def design_scores(self, version: str | None) -> DesignScores | None:
        """The design-space scores stored with ``version``, or ``None``."""
        if version is None or not (path := self.folder / version / DESIGN_FILE).exists():
            return None
        data = np.load(path)
        acquisition = str(data["acquisition"]) if "acquisition" in data.files else "eubo"
        return DesignScores([str(a) for a in data["attributes"]], np.asarray(data["scores"], dtype=float), acquisition)

    # ------------------------------------------------------------------ publishing
    # A hook between the steps of ``publish`` (tests kill the process there); a no-op.
    after_step: Callable[[str], None] = staticmethod(lambda step: None)

    def recover(self, live: str | None) -> list[str]:
        """Make the folder agree with ``live``, the database's ``model_version``: remove temporary
        folders and pointers left by a killed publish and versions newer than ``live`` (written,
        never committed), and point ``CURRENT`` at ``live``. Call it holding the trainer lock.
        Returns what was removed or rewritten."""
        done: list[str] = []
        if not self.folder.exists():
            return done
        live_number = int(live[1:]) if live and live[1:].isdigit() else 0
        for path in self.folder.iterdir():
            if path.name.startswith(".tmp-") or path.name == f".{CURRENT}.tmp":
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                done.append(path.name)
        for version in self.versions():
            if int(version[1:]) > live_number:
                shutil.rmtree(self.folder / version)
                done.append(version)
        if self.current_version() != live:
            if live is None:
                (self.folder / CURRENT).unlink(missing_ok=True)
            else:
                self._write_pointer(live)
            done.append(CURRENT)
        return done

    def next_version(self, live: str | None) -> str:
        """The number after every folder and the database's version (hold the trainer lock)."""
        numbers = [int(v[1:]) for v in self.versions()]
        if live and live[1:].isdigit():
            numbers.append(int(live[1:]))
        return f"v{max(numbers, default=0) + 1}"

    def publish(self, model_state: dict[str, Any], config: dict[str, Any], metrics: dict[str, Any],
                pairs: list[tuple[int, int, int]], pair_scores: np.ndarray,
                design: DesignScores | None = None, *, live: str | None = None,
                commit: Callable[[str], None] | None = None) -> str:
        """Write the next version whole, make it live with ``commit(version)`` (the database's
        transaction; without one, ``CURRENT`` alone is the truth), then mirror it in ``CURRENT``.
        ``live`` is the database's current version. Returns the version."""
        import torch

        self.folder.mkdir(parents=True, exist_ok=True)
        version = self.next_version(live if commit else self.current_version())
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
        for path in tmp.iterdir():
            _fsync(path)
        _fsync(tmp)
        self.after_step("written")
        tmp.rename(self.folder / version)
        _fsync(self.folder)
        self.after_step("renamed")
        if commit is not None:
            commit(version)
            self.after_step("committed")
        self._write_pointer(version)
        self.after_step("pointed")
        return version

    def _write_pointer(self, version: str) -> None:
        pointer = self.folder / f".{CURRENT}.tmp"
        pointer.write_text(version)
        _fsync(pointer)
        os.replace(pointer, self.folder / CURRENT)
        _fsync(self.folder)


def _fsync(path: Path) -> None:
    """Flush a file's or a folder's entry to disk, so a rename is not reordered before its data."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
