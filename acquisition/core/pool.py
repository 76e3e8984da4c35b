"""The pool as policies see it: prompts with their base responses, read-only, and the text key
used for de-duplication and embedding caches."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from acquisition.core.errors import NotFoundError


def text_hash(text: str) -> str:
    """`sha256` hex digest of a text, the key for de-duplication and embedding caches."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()



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
    response_text: dict[int, str]
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
