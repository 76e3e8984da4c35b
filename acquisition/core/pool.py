"""The pool as policies see it: prompts with their base responses, read-only, and the text key
used for de-duplication and embedding caches."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

import numpy as np

from acquisition.core.errors import NotFoundError


def text_hash(text: str) -> str:
    """`sha256` hex digest of a text, the key for de-duplication and embedding caches."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()



class TextLookup(Mapping[int, str]):
    """Response texts by id, read on demand (``fetch(ids) -> {id: text}``) with a small LRU
    cache, so a pool snapshot holds ids, not every text: at a million responses the texts are
    several hundred MB, and serving a pair needs two of them."""

    def __init__(self, ids: Sequence[int] | np.ndarray, fetch: Callable[[list[int]], dict[int, str]],
                 cache_size: int = 4096) -> None:
        self._ids = np.unique(np.asarray(ids, dtype=np.int64))
        self._fetch = fetch
        self._cache: OrderedDict[int, str] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, (int, np.integer)):
            return False
        i = int(np.searchsorted(self._ids, key))
        return i < len(self._ids) and int(self._ids[i]) == key

    def __getitem__(self, key: int) -> str:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        if key not in self:
            raise KeyError(key)
        return self.many([key])[key]

    def many(self, keys: Sequence[int]) -> dict[int, str]:
        """Texts of ``keys`` (known ids) in one or a few reads; the most recent are cached."""
        with self._lock:
            out = {k: self._cache[k] for k in keys if k in self._cache}
        missing = [int(k) for k in keys if k not in out]
        if missing:
            fetched = self._fetch(missing)
            out.update(fetched)
            with self._lock:
                for k, v in fetched.items():
                    self._cache[k] = v
                    self._cache.move_to_end(k)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out

    def __iter__(self) -> Iterator[int]:
        return (int(i) for i in self._ids)

    def __len__(self) -> int:
        return len(self._ids)


def texts_of(texts: Mapping[int, str], keys: Sequence[int]) -> dict[int, str]:
    """Many texts from a dict or a ``TextLookup`` (batched reads for the latter)."""
    if isinstance(texts, TextLookup):
        return texts.many(keys)
    return {k: texts[k] for k in keys}


class PoolPrompt:
    """One prompt with its base responses; its text is read on demand (``texts``)."""

    __slots__ = ("id", "task_type", "response_ids", "_texts", "_text")

    def __init__(self, id: int, task_type: str, response_ids: tuple[int, ...],
                 texts: Mapping[int, str] | None = None, text: str | None = None) -> None:
        self.id, self.task_type, self.response_ids = id, task_type, response_ids
        self._texts, self._text = texts, text

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self._texts[self.id] if self._texts is not None else ""
        return self._text

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, PoolPrompt)
                and (self.id, self.task_type, self.response_ids) == (other.id, other.task_type, other.response_ids))

    def __hash__(self) -> int:
        return hash((self.id, self.response_ids))

    def __repr__(self) -> str:
        return f"PoolPrompt(id={self.id}, task_type={self.task_type!r}, response_ids={self.response_ids})"


ARRAY_FIELDS = ("prompt_ids", "task_codes", "offsets", "response_ids", "quality")


@dataclass(frozen=True)
class PoolArrays:
    """The base pool as columns: what a server holds at a million responses (ids, task types,
    qualities; about 30 bytes a response), built off the request path and saved as ``.npy``
    files a server maps into memory in milliseconds.

    The responses of prompt ``i`` (``prompt_ids[i]``) are ``response_ids[offsets[i]:offsets[i+1]]``,
    in ascending id order; prompts are in ascending id order (the pool order)."""

    version: int
    prompt_ids: np.ndarray   # (P,) int64, ascending
    task_codes: np.ndarray   # (P,) int32, index into task_types
    task_types: tuple[str, ...]
    offsets: np.ndarray      # (P + 1,) int64
    response_ids: np.ndarray  # (R,) int64
    quality: np.ndarray      # (R,) float64, NaN where unknown
    droppable: np.ndarray | None = None  # (R,) bool: the drop_answer editor changes the response

    @classmethod
    def from_rows(cls, version: int, prompts: Sequence[tuple[int, str]],
                  responses: Sequence[tuple[int, int, float | None]]) -> PoolArrays:
        """From ``(prompt id, task type)`` and ``(response id, prompt id, quality)`` rows."""
        return cls.empty(version).extended(version, prompts, responses)

    @classmethod
    def empty(cls, version: int = 0) -> PoolArrays:
        z = np.zeros(0, dtype=np.int64)
        return cls(version, z, np.zeros(0, dtype=np.int32), (), np.zeros(1, dtype=np.int64), z,
                   np.zeros(0, dtype=np.float64), np.zeros(0, dtype=bool))

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def max_prompt_id(self) -> int:
        return int(self.prompt_ids[-1]) if len(self.prompt_ids) else 0

    @property
    def max_response_id(self) -> int:
        return int(self.response_ids.max()) if len(self.response_ids) else 0

    def extended(self, version: int, prompts: Sequence[tuple[int, str]],
                 responses: Sequence[tuple[int, int, float | None]],
                 droppable: Sequence[bool] | None = None) -> PoolArrays:
        """These columns with new prompts (ids above every known one) and new responses (ids
        above every known one, of new or known prompts) added: the incremental build."""
        types = list(self.task_types)
        code = {t: i for i, t in enumerate(types)}
        new_codes = np.empty(len(prompts), dtype=np.int32)
        for n, (_pid, task) in enumerate(prompts):
            if task not in code:
                code[task] = len(types)
                types.append(task)
            new_codes[n] = code[task]
        new_pids = np.fromiter((p[0] for p in prompts), dtype=np.int64, count=len(prompts))
        if len(new_pids) and len(self.prompt_ids) and new_pids.min() <= self.max_prompt_id:
            raise ValueError("extended: new prompt ids must be above the known ones")
        order = np.argsort(new_pids, kind="stable")
        prompt_ids = np.concatenate([self.prompt_ids, new_pids[order]])
        task_codes = np.concatenate([self.task_codes, new_codes[order]])
        rid = np.fromiter((r[0] for r in responses), dtype=np.int64, count=len(responses))
        rpid = np.fromiter((r[1] for r in responses), dtype=np.int64, count=len(responses))
        rq = np.fromiter((np.nan if r[2] is None else float(r[2]) for r in responses), dtype=np.float64,
                         count=len(responses))
        old_drop = self.droppable if self.droppable is not None else np.zeros(len(self.response_ids), dtype=bool)
        rdrop = (np.asarray(droppable, dtype=bool) if droppable is not None
                 else np.zeros(len(responses), dtype=bool))
        known_flags = droppable is not None and (self.droppable is not None or not len(self.response_ids))
        new_index = np.searchsorted(prompt_ids, rpid)
        if len(rpid) and (new_index.max() >= len(prompt_ids) or (prompt_ids[new_index] != rpid).any()):
            raise ValueError("extended: a response names a prompt that is not in the pool")
        if len(self.response_ids) and (not len(rpid) or new_index.min() >= len(self.prompt_ids)):
            # only new prompts got responses (an import): the old columns stay as they are and
            # the new rows are sorted and appended, without sorting a million old ones again
            order = np.lexsort((rid, new_index))
            counts = np.bincount(new_index - len(self.prompt_ids), minlength=len(prompt_ids) - len(self.prompt_ids))
            offsets = np.concatenate([self.offsets, self.offsets[-1] + np.cumsum(counts)]).astype(np.int64)
            return PoolArrays(version, prompt_ids, task_codes, tuple(types), offsets,
                              np.concatenate([self.response_ids, rid[order]]), np.concatenate([self.quality, rq[order]]),
                              np.concatenate([old_drop, rdrop[order]]) if known_flags else None)
        all_rid = np.concatenate([self.response_ids, rid])
        all_pid = np.concatenate([np.repeat(self.prompt_ids, self.counts), rpid])
        all_q = np.concatenate([self.quality, rq])
        all_drop = np.concatenate([old_drop, rdrop])
        index = np.searchsorted(prompt_ids, all_pid)
        order = np.lexsort((all_rid, index))
        counts = np.bincount(index, minlength=len(prompt_ids)) if len(index) else np.zeros(len(prompt_ids), np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return PoolArrays(version, prompt_ids, task_codes, tuple(types), offsets, all_rid[order], all_q[order],
                          all_drop[order] if known_flags else None)

    # ------------------------------------------------------------------ files
    def save(self, folder: str | Path, replace: bool = False) -> Path:
        """Write the columns to ``folder`` (made whole in a temporary folder, then renamed);
        ``replace``: over an existing one (a reader that mapped its files keeps them)."""
        folder = Path(folder)
        tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}-{threading.get_ident()}")
        tmp.mkdir(parents=True, exist_ok=True)
        for name in ARRAY_FIELDS:
            np.save(tmp / f"{name}.npy", getattr(self, name))
        if self.droppable is not None:
            np.save(tmp / "droppable.npy", self.droppable)
        (tmp / "meta.json").write_text(json.dumps({"version": self.version, "task_types": list(self.task_types)}))
        if replace and folder.exists():
            old = folder.with_name(f".old-{folder.name}-{os.getpid()}-{threading.get_ident()}")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
            return folder
        try:
            os.replace(tmp, folder)
        except OSError:  # another builder wrote the same version first: theirs is as good
            shutil.rmtree(tmp, ignore_errors=True)
        return folder

    @classmethod
    def load(cls, folder: str | Path, mmap: bool = True) -> PoolArrays:
        """Columns saved by ``save``; memory-mapped, so loading a million responses is instant."""
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text())
        mode: Literal["r"] | None = "r" if mmap else None
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode=mode) for name in ARRAY_FIELDS}
        drop = folder / "droppable.npy"
        return cls(int(meta["version"]), task_types=tuple(meta["task_types"]),
                   droppable=np.load(drop, mmap_mode=mode) if drop.exists() else None, **arrays)


def prompt_at(arrays: PoolArrays, prompt_text: Mapping[int, str], position: int) -> PoolPrompt:
    """The prompt at ``position`` of the columns, its text read on demand."""
    s, e = int(arrays.offsets[position]), int(arrays.offsets[position + 1])
    return PoolPrompt(int(arrays.prompt_ids[position]), arrays.task_types[int(arrays.task_codes[position])],
                      tuple(int(r) for r in arrays.response_ids[s:e]), prompt_text)


class PromptSequence(Sequence[PoolPrompt]):
    """Prompts of a snapshot by position (all of them, the servable ones, or one task type),
    made on demand from the columns: nothing per prompt is held."""

    def __init__(self, arrays: PoolArrays, prompt_text: Mapping[int, str], positions: np.ndarray) -> None:
        # the snapshot's columns and texts, not the snapshot: a snapshot that held sequences
        # holding it was a reference cycle, freed only by a full garbage collection, and a server
        # swapping in a new model every 10 s at a million responses kept every old one mapped
        self._arrays, self._prompt_text = arrays, prompt_text
        self.positions = positions  # positions in arrays.prompt_ids, ascending
        self.ids = arrays.prompt_ids[positions]

    def __len__(self) -> int:
        return len(self.positions)

    @overload
    def __getitem__(self, i: int) -> PoolPrompt: ...
    @overload
    def __getitem__(self, i: slice) -> PromptSequence: ...

    def __getitem__(self, i: int | slice) -> PoolPrompt | PromptSequence:
        if isinstance(i, slice):
            return PromptSequence(self._arrays, self._prompt_text, self.positions[i])
        return prompt_at(self._arrays, self._prompt_text, int(self.positions[i]))

    def __iter__(self) -> Iterator[PoolPrompt]:
        for start in range(0, len(self.positions), 2000):  # prompt texts a chunk at a time
            chunk = self.positions[start:start + 2000]
            texts = texts_of(self._prompt_text, [int(x) for x in self._arrays.prompt_ids[chunk]])
            for position in chunk:
                prompt = prompt_at(self._arrays, self._prompt_text, int(position))
                prompt._text = texts.get(prompt.id, "")
                yield prompt

    def position(self, prompt_id: int) -> int:
        """Where ``prompt_id`` is in this sequence, or -1."""
        i = int(np.searchsorted(self.ids, prompt_id))
        return i if i < len(self.ids) and int(self.ids[i]) == prompt_id else -1

    def get(self, prompt_id: int) -> PoolPrompt | None:
        i = self.position(prompt_id)
        return self[i] if i >= 0 else None


class PoolSnapshot:
    """Read-only view of the base pool that policies choose from (edited copies excluded):
    columns (``PoolArrays``) and the texts, a dict or read on demand (``TextLookup``)."""

    def __init__(self, arrays: PoolArrays, response_text: Mapping[int, str],
                 prompt_text: Mapping[int, str] | None = None) -> None:
        self.arrays = arrays
        self.version = arrays.version
        self.response_text = response_text
        self.prompt_text: Mapping[int, str] = prompt_text if prompt_text is not None else {}
        counts = arrays.counts
        self.prompts = PromptSequence(arrays, self.prompt_text, np.arange(len(arrays.prompt_ids)))
        self.servable = PromptSequence(arrays, self.prompt_text, np.flatnonzero(counts >= 2))
        self._response_order: np.ndarray | None = None

    @property
    def n_responses(self) -> int:
        return len(self.arrays.response_ids)

    def prompt_at(self, position: int) -> PoolPrompt:
        return prompt_at(self.arrays, self.prompt_text, position)

    def prompt(self, prompt_id: int) -> PoolPrompt:
        i = self.prompts.position(prompt_id)
        if i < 0:
            raise NotFoundError(f"No prompt with id {prompt_id} in the pool.")
        return self.prompt_at(i)

    def by_task_type(self) -> dict[str, PromptSequence]:
        """The servable prompts of each task type, in pool order."""
        codes = self.arrays.task_codes[self.servable.positions]
        return {t: PromptSequence(self.arrays, self.prompt_text, self.servable.positions[codes == c])
                for c, t in enumerate(self.arrays.task_types) if (codes == c).any()}

    def response_position(self, response_id: int) -> int:
        """Where ``response_id`` is in ``arrays.response_ids`` (pool order), or -1."""
        if self._response_order is None:
            self._response_order = np.argsort(self.arrays.response_ids, kind="stable")
        ids = self.arrays.response_ids
        k = int(np.searchsorted(ids, response_id, sorter=self._response_order))
        if k < len(ids) and int(ids[self._response_order[k]]) == response_id:
            return int(self._response_order[k])
        return -1

    def prompt_of(self, response_id: int) -> int:
        """The prompt of a base response (``NotFoundError`` if it is not in the pool)."""
        i = self.response_position(response_id)
        if i < 0:
            raise NotFoundError(f"No base response with id {response_id} in the pool.")
        return int(self.arrays.prompt_ids[int(np.searchsorted(self.arrays.offsets, i, side="right")) - 1])

    def other_response(self, prompt_id: int, k: int) -> int:
        """The ``k``-th base response (pool order) that does not answer ``prompt_id``;
        ``0 <= k < n_responses - len(its responses)``."""
        a = self.arrays
        i = self.prompts.position(prompt_id)
        s, e = (int(a.offsets[i]), int(a.offsets[i + 1])) if i >= 0 else (0, 0)
        return int(a.response_ids[k if k < s else k + (e - s)])

    @functools.cached_property
    def response_quality(self) -> dict[int, float]:
        """Known qualities by response id."""
        q = np.asarray(self.arrays.quality)
        known = np.isfinite(q)
        return dict(zip(self.arrays.response_ids[known].tolist(), q[known].tolist()))

    def droppable_ids(self, changes: Callable[[str], bool]) -> np.ndarray:
        """Base responses the ``drop_answer`` editor changes (attention checks; ``changes(text)``
        says whether it does): from the columns when the builder computed them, else from the
        texts here, a chunk at a time, once per snapshot."""
        a = self.arrays
        if a.droppable is None:
            object.__setattr__(a, "droppable", flag_texts(a.response_ids, self.response_text, changes))
        return a.response_ids[np.asarray(a.droppable, dtype=bool)]


def flag_texts(response_ids: np.ndarray, texts: Mapping[int, str], flag: Callable[[str], bool]) -> np.ndarray:
    """``flag(text)`` for each response, reading the texts a chunk at a time."""
    flags = np.zeros(len(response_ids), dtype=bool)
    for start in range(0, len(response_ids), 5000):
        ids = [int(r) for r in response_ids[start:start + 5000]]
        chunk = texts_of(texts, ids)
        flags[start:start + len(ids)] = [flag(chunk[r]) for r in ids]
    return flags
