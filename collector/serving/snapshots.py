"""Pool snapshots built off the server, so no request waits on reading a million rows.

When the pool moves, the server's rebuild thread runs ``python -m collector snapshot`` as a
process of its own (at the trainer's lower priority, on the other core) and waits for it without holding the GIL.
The builder reads only what was added since the newest saved snapshot (the pool only grows),
flags the responses the ``drop_answer`` attention check can use (only while quality control
serves those checks), and saves the columns (``PoolArrays``) under
``cache/pool/<database>/v<pool version>/``. The server maps them into
memory in milliseconds and builds the policy over them with array operations; until then the
old policy keeps serving. Small pools (below ``DECONFOUND_SNAPSHOT_PROCESS_MIN`` responses,
20,000) are read in the server's thread, which is quicker than starting a process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.core.pool import PoolArrays, TextLookup, flag_texts
from acquisition.editors import get_editor
from collector.serving.qc_settings import qc_config
from collector.store import Store

KEEP_VERSIONS = 2
BUILD_TIMEOUT_S = 600.0


def process_threshold() -> int:
    """Pools with at least this many responses are read by a builder process."""
    return int(os.environ.get("DECONFOUND_SNAPSHOT_PROCESS_MIN", "20000"))


def snapshot_root(db_path: str | Path) -> Path:
    db_path = Path(db_path).resolve()
    return db_path.parent / "cache" / "pool" / db_path.stem


def saved_versions(db_path: str | Path) -> list[int]:
    root = snapshot_root(db_path)
    if not root.is_dir():
        return []
    return sorted(int(p.name[1:]) for p in root.iterdir() if p.name.startswith("v") and p.name[1:].isdigit()
                  and (p / "meta.json").exists())


def load_saved(db_path: str | Path, version: int) -> PoolArrays | None:
    """The saved columns of pool ``version``, memory-mapped, or ``None``."""
    folder = snapshot_root(db_path) / f"v{version}"
    if not (folder / "meta.json").exists():
        return None
    try:
        return PoolArrays.load(folder, mmap=True)
    except (OSError, ValueError, KeyError):  # removed or half-written under us: build again
        return None


def save(db_path: str | Path, arrays: PoolArrays) -> None:
    """Save columns read elsewhere (the server's own first read), unless that version is saved."""
    folder = snapshot_root(db_path) / f"v{arrays.version}"
    if not (folder / "meta.json").exists():
        try:
            arrays.save(folder)
        except OSError:  # a read-only folder: the next start reads the pool again
            return
    for old in saved_versions(db_path)[:-KEEP_VERSIONS]:
        shutil.rmtree(snapshot_root(db_path) / f"v{old}", ignore_errors=True)


def drop_flag() -> Any:
    drop = get_editor("drop_answer")
    return lambda text: drop.apply(text, 0) != text


def build_snapshot(db_path: str | Path) -> dict[str, Any]:
    """Save the columns of the database's current pool version (incrementally from the newest
    saved one), flag the droppable responses, prune old versions; returns a summary."""
    t0 = time.perf_counter()
    store = Store(db_path, create=False, readonly=True)
    try:
        version = store.pool_version
        wants_flags = attention_drops(store)
        done = load_saved(db_path, version)
        if done is not None and (done.droppable is not None or not wants_flags):
            return {"pool_version": version, "responses": len(done.response_ids), "new_responses": 0,
                    "attention_flags": done.droppable is not None, "seconds": round(time.perf_counter() - t0, 3),
                    "built": False}
        older = [v for v in saved_versions(db_path) if v < version]
        previous = done if done is not None else load_saved(db_path, older[-1]) if older else None
        arrays = store.pool_arrays(previous)
        if not wants_flags:  # reading every text to flag it costs minutes at a million
            arrays.save(snapshot_root(db_path) / f"v{version}")
            new = np.flatnonzero(arrays.response_ids > (previous.max_response_id if previous is not None else 0))
            return _done(db_path, version, arrays, len(new), t0)
        flags = np.zeros(len(arrays.response_ids), dtype=bool)
        known = np.zeros(len(arrays.response_ids), dtype=bool)
        if previous is not None and previous.droppable is not None and len(previous.response_ids):
            order = np.argsort(previous.response_ids)
            k = np.searchsorted(previous.response_ids, arrays.response_ids, sorter=order).clip(max=len(order) - 1)
            known = previous.response_ids[order[k]] == arrays.response_ids
            flags[known] = np.asarray(previous.droppable)[order[k[known]]]
        new = np.flatnonzero(~known)
        texts = TextLookup(arrays.response_ids[new], store.response_texts, cache_size=0)
        flags[new] = flag_texts(arrays.response_ids[new], texts, drop_flag())
        object.__setattr__(arrays, "droppable", flags)
        arrays.save(snapshot_root(db_path) / f"v{version}", replace=done is not None)  # the flagged one
    finally:
        store.close()
    return _done(db_path, version, arrays, len(new), t0)


def _done(db_path: str | Path, version: int, arrays: PoolArrays, new: int, t0: float) -> dict[str, Any]:
    for old in saved_versions(db_path)[:-KEEP_VERSIONS]:
        shutil.rmtree(snapshot_root(db_path) / f"v{old}", ignore_errors=True)
    return {"pool_version": version, "responses": len(arrays.response_ids), "new_responses": int(new),
            "attention_flags": arrays.droppable is not None, "seconds": round(time.perf_counter() - t0, 3),
            "built": True}


def attention_drops(store: Store) -> bool:
    """Whether quality control serves attention checks that need the texts flagged (``drop_answer``)."""
    return qc_config(store).flags_texts


def build_in_process(db_path: str | Path) -> PoolArrays | None:
    """Run the builder as a process of its own at a lower priority and load what it saved;
    ``None`` if it failed (the caller reads the pool itself)."""
    command = [sys.executable, "-m", "collector", "snapshot", "--db", str(Path(db_path).resolve())]
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT_S, preexec_fn=lambda: os.nice(10))  # noqa: PLW1509
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    try:
        version = int(json.loads(done.stdout.strip().splitlines()[-1])["pool_version"])
    except (ValueError, KeyError, IndexError):
        return None
    return load_saved(db_path, version)
