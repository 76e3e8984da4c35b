"""The pool as policies see it: prompts with their base responses, read-only, and the text key
used for de-duplication and embedding caches."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class PoolPrompt:
    id: int
    text: str
    task_type: str
    response_ids: tuple[int, ...]


@dataclass
class PoolSnapshot:
    """Read-only view of the base pool that policies choose from (edited copies excluded)."""

    version: int
    prompts: list[PoolPrompt]
    response_text: Mapping[int, str]  # a dict, or a TextLookup that reads texts on demand
    response_quality: dict[int, float | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_id = {p.id: p for p in self.prompts}

    @property
    def servable(self) -> list[PoolPrompt]:
        return [p for p in self.prompts if len(p.response_ids) >= 2]

    def prompt(self, prompt_id: int) -> PoolPrompt:
        try:
            return self._by_id[prompt_id]
        except KeyError:
            raise NotFoundError(f"No prompt with id {prompt_id} in the pool.") from None
