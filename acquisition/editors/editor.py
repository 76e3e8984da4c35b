"""The editor contract, the registry, text helpers shared by the editors, and
``apply_edit_vector``, which applies a whole edit vector to a base text."""

from __future__ import annotations

import math
import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, cast

from acquisition.core.errors import ConfigError

EDITORS: dict[str, "Editor"] = {}


def register_editor(cls: type["Editor"]) -> type["Editor"]:
    """Class decorator: add one instance of the editor to ``EDITORS`` under its name."""
    EDITORS[cls.name] = cls()
    return cls


def get_editor(name: str) -> "Editor":
    try:
        return EDITORS[name]
    except KeyError:
        raise ConfigError(
            f"Unknown attribute {name!r}; known attributes: {', '.join(sorted(EDITORS))}."
        ) from None


def edit_seed(response_id: int, attribute: str) -> int:
    """Stable seed for one (response, attribute), so the same edited copy is reused."""
    return zlib.crc32(f"{response_id}:{attribute}".encode()) & 0x7FFFFFFF


_FENCE = re.compile(r"```.*?```", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def _split_blocks(text: str) -> list[tuple[bool, str]]:
    """Paragraph blocks as ``(is_code, block)``; fenced code blocks are never edited."""
    out: list[tuple[bool, str]] = []
    pos = 0
    for m in _FENCE.finditer(text):
        for para in re.split(r"\n\s*\n", text[pos:m.start()]):
            if para.strip():
                out.append((False, para.strip()))
        out.append((True, m.group(0)))
        pos = m.end()
    for para in re.split(r"\n\s*\n", text[pos:]):
        if para.strip():
            out.append((False, para.strip()))
    return out


def _join_blocks(blocks: list[tuple[bool, str]]) -> str:
    return "\n\n".join(b for _, b in blocks if b.strip())


def _map_prose(text: str, fn) -> str:
    return _join_blocks([(c, b if c else fn(b)) for c, b in _split_blocks(text)])


def _prose(text: str) -> str:
    return "\n\n".join(b for c, b in _split_blocks(text) if not c)


def _sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(paragraph.replace("\n", " ")) if s.strip()]


def word_count(text: str) -> int:
    return len(re.findall(r"\w+", text))


class Editor(ABC):
    """Contract for an attribute editor.

    ``apply(text, seed)`` switches the attribute on (and leaves a text that already has it
    alone); ``remove(text)`` switches it off where that can be done without losing content
    (otherwise it returns the text unchanged); ``measure(text)`` reads it back as a number,
    ``> 0`` meaning present unless ``check`` is overridden.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    order: ClassVar[int]  # position in the application sequence; wrappers come last
    quality_changing: ClassVar[bool] = False  # a positive control: the edit changes real quality
    default_effect: ClassVar[float] = 0.0  # simulated annotators' true effect, in quality points
    # what a response no policy edited shows: "read" (``is_on`` of the text tells), "off" (only
    # the edit creates it: the positive controls), "unknown" (an amount that needs the base)
    unedited: ClassVar[str] = "read"
    takes_donor: ClassVar[bool] = False  # True: `apply` accepts `donor`, texts written for other prompts

    @property
    def readable_alone(self) -> bool:
        """Whether one text tells if it shows the attribute."""
        return self.unedited == "read"

    def state(self, switch: bool | None, text: str) -> float:
        """The attribute as every table reads it: ``1.0`` on, ``0.0`` off, NaN unknown. The edit
        vector's switch where a policy randomised it, else what the unedited text shows."""
        if switch is not None:
            return 1.0 if switch else 0.0
        if self.unedited == "off":
            return 0.0
        if self.unedited == "unknown":
            return math.nan
        return 1.0 if self.is_on(text) else 0.0

    @abstractmethod
    def apply(self, text: str, seed: int) -> str: ...

    def remove(self, text: str) -> str:
        return text

    @abstractmethod
    def measure(self, text: str) -> float: ...

    def is_on(self, text: str) -> bool:
        return self.measure(text) > 0

    def check(self, base: str, edited: str, on: bool) -> bool:
        """Manipulation check: does ``edited`` show the attribute exactly when ``on``?"""
        return self.is_on(edited) == on


DEFAULT_ATTRIBUTES = ("verbosity", "list_format", "sycophantic_opener", "bold", "emoji", "hedging")


def apply_edit_vector(text: str, edit_vector: dict[str, dict[str, Any]],
                      donor: Callable[[int], str] | None = None) -> tuple[str, dict[str, bool]]:
    """Apply every switch in an edit vector to a base text.

    Args:
        text: the base response.
        edit_vector: ``{attribute: {"on": bool, "editor": name, "seed": int}}``.
        donor: ``seed -> text`` of a response written for another prompt, for editors that
            swap the answer (``off_topic``); the serving layer draws it from the pool.

    Returns:
        ``(edited_text, manipulation_check)`` where the check maps each attribute to whether
        ``measure`` reads back what the vector asked for. Once an answer is swapped in, the
        other editors are checked against the swapped-in text.
    """
    editors = sorted((get_editor(a) for a in edit_vector), key=lambda e: e.order)
    edited = reference = text
    for editor in editors:
        if editor.takes_donor and edit_vector[editor.name]["on"]:
            swap = cast(Callable[..., str], editor.apply)  # takes_donor: apply(text, seed, donor=...)
            edited = reference = swap(edited, int(edit_vector[editor.name]["seed"]), donor=donor)
    for editor in reversed(editors):
        if not edit_vector[editor.name]["on"]:
            edited = editor.remove(edited)
    for editor in editors:
        if edit_vector[editor.name]["on"] and not editor.takes_donor:
            edited = editor.apply(edited, int(edit_vector[editor.name]["seed"]))
    check = {e.name: e.check(text if e.takes_donor else reference, edited, bool(edit_vector[e.name]["on"]))
             for e in editors}
    return edited, check
