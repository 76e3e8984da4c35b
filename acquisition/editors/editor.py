"""The editor contract, the registry, text helpers shared by the editors, and
``apply_edit_vector``, which applies a whole edit vector to a base text."""

from __future__ import annotations

import math
import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, cast

from acquisition.core.errors import ConfigError
from acquisition.editors.lexicon import serious

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


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")

# ---------------------------------------------------------------------- what an editor may touch
# Editors change prose only. A text is cut into segments whose concatenation is the text:
# fenced or indented code ("code"), structural lines ("raw": headings, tables, blockquotes, HTML
# lines, rules), runs of prose lines ("prose"), and line ends and blank lines ("eol", "blank").
# Inside prose, inline code, HTML, links, URLs, math, emphasis and list markers are masked by
# one private-use character each before an editor sees the prose, and put back after, so they
# come out byte-identical whatever the editor does with the words around them.
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_RAW_LINE = re.compile(
    r"^ {0,3}(?:#{1,6}(?:\s|$)|>|\|)"          # headings, blockquotes, table rows
    r"|^\s*</?[A-Za-z!][^\n]*$"                 # lines that open with an HTML tag or comment
    r"|^ {0,3}(?:[-*_])(?:\s*(?:[-*_])){2,}\s*$"  # horizontal rules
    r"|^ {0,3}(?:=+|-+)\s*$"                   # setext heading underlines
)
MASKS: dict[str, str] = {  # category -> pattern, masked in this order
    "code": r"``[^`\n]+``|`[^`\n]+`",
    "html": r"<!--.*?-->|</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>\n]*)?/?>|&(?:[A-Za-z]{2,8}|#\d{1,7}|#x[0-9A-Fa-f]{1,6});",
    "link": r"!?\[[^\]\n]*\]\([^)\n]*\)|!?\[[^\]\n]+\]\[[^\]\n]*\]|<(?:https?|mailto|ftp):[^>\s]+>",
    "url": r"\b(?:https?|ftp)://[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]]|\bwww\.[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]]"
           r"|\b[\w.+-]+@[\w-]+\.[\w.-]*\w",
    "math": r"\$\$[^$]+\$\$|\$[^$\n]+\$",
    "strong": r"\*\*[^*\n]+\*\*|__[^_\n]+__",
    "emphasis": r"(?<![*\w])\*[^*\s](?:[^*\n]*[^*\s])?\*(?![*\w])|(?<![_\w])_[^_\s](?:[^_\n]*[^_\s])?_(?![_\w])"
                r"|~~[^~\n]+~~",
    "marker": r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+",  # at line starts (the pattern runs with re.M)
    "private": r"[\uE000-\uF8FF]",  # characters of the masking range itself, so they round-trip
}
_PLACEHOLDER = 0xE000
_MAX_MASKS = 0xF8FF - 0xE000


def _segments(text: str) -> list[tuple[str, str]]:
    """``(kind, text)`` pieces whose concatenation is ``text`` exactly; see above for the kinds."""
    lines = text.splitlines(keepends=True)
    out: list[tuple[str, str]] = []

    def add(kind: str, piece: str) -> None:
        body = piece.rstrip("\r\n")
        if body:
            out.append((kind, body))
        if len(body) < len(piece):
            out.append(("eol", piece[len(body):]))

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE_OPEN.match(line)
        if fence:
            close = re.compile(rf"^ {{0,3}}{re.escape(fence.group(1)[0])}{{{len(fence.group(1))},}}\s*$")
            j = i + 1
            while j < len(lines) and not close.match(lines[j]):
                j += 1
            add("code", "".join(lines[i:j + 1]))
            i = j + 1
        elif not line.strip():
            out.append(("blank", line))
            i += 1
        elif _RAW_LINE.match(line):
            add("raw", line)
            i += 1
        else:
            j = i
            while (j < len(lines) and lines[j].strip() and not _FENCE_OPEN.match(lines[j])
                   and not _RAW_LINE.match(lines[j])):
                j += 1
            run = lines[i:j]
            after_break = not out or out[-1][0] == "blank"
            indented = all(r.startswith(("    ", "\t")) for r in run)
            add("code" if indented and after_break else "prose", "".join(run))
            i = j
    return out


def mask(prose: str, keep: frozenset[str] = frozenset()) -> tuple[str, list[str]]:
    """``prose`` with every protected span (``MASKS``, but the categories in ``keep``) replaced by
    one private-use character, and the spans in order of their characters."""
    spans: list[str] = []
    pattern = "|".join(f"(?:{p})" for c, p in MASKS.items() if c not in keep or c == "private")

    def hide(m: re.Match[str]) -> str:
        spans.append(m.group(0))
        return chr(_PLACEHOLDER + len(spans) - 1)

    masked = re.sub(pattern, hide, prose, flags=re.S | re.M) if pattern else prose
    if len(spans) > _MAX_MASKS:
        raise ValueError("too many protected spans to mask")
    return masked, spans


def unmask(text: str, spans: list[str]) -> str:
    return re.sub("[\uE000-\uF8FF]", lambda m: spans[ord(m.group(0)) - _PLACEHOLDER], text)


def _map_prose(text: str, fn: Callable[[str], str], keep: frozenset[str] = frozenset()) -> str:
    """``fn`` applied to every prose run with its protected spans masked (but ``keep``); code,
    structural lines, line breaks and every protected span come back byte-identical."""
    out = []
    for kind, piece in _segments(text):
        if kind == "prose":
            try:
                masked, spans = mask(piece, keep)
            except ValueError:
                out.append(piece)  # more protected spans than placeholders: leave the run alone
                continue
            piece = unmask(fn(masked), spans)
        out.append(piece)
    return "".join(out)


def _split_blocks(text: str) -> list[tuple[str, str]]:
    """Paragraphs (runs between blank lines) as ``(kind, text)``: ``code`` for code blocks,
    ``prose`` for prose, ``raw`` for anything with structural lines (headings, tables, ...)."""
    blocks: list[tuple[str, str]] = []
    current: list[tuple[str, str]] = []

    def flush() -> None:
        if current:
            kinds = {k for k, _ in current if k in ("code", "raw", "prose")}
            kind = "code" if kinds == {"code"} else "prose" if kinds == {"prose"} else "raw"
            blocks.append((kind, "".join(p for _, p in current).strip("\r\n")))
            current.clear()

    for kind, piece in _segments(text):
        if kind == "blank":
            flush()
        elif kind == "code":
            flush()
            blocks.append(("code", piece))
        else:
            current.append((kind, piece))
    flush()
    return [(k, b) for k, b in blocks if b.strip()]


def _join_blocks(blocks: list[tuple[str, str]]) -> str:
    return "\n\n".join(b for _, b in blocks if b.strip())


def _prose(text: str) -> str:
    """Everything but code blocks: where the style attributes are read."""
    return "".join(piece for kind, piece in _segments(text) if kind != "code")


def _sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(paragraph.replace("\n", " ")) if s.strip()]


def word_count(text: str) -> int:
    return len(re.findall(r"\w+", text))


class Editor(ABC):
    """Contract for an attribute editor.

    ``applies(text)`` says whether the attribute can be switched both ways in this text, and
    ``fits(text, prompt)`` adds the request (no cheer on a harmful one); ``apply(text, seed)``
    switches the attribute on where it applies (and leaves a text that already has it alone),
    ``add`` does the same for a text already found to fit; ``remove(text)`` switches it off,
    natural occurrences included, where that can be done without losing content (otherwise it
    returns the text unchanged); ``measure(text)`` reads it back as a number, ``> 0`` meaning
    present unless ``check`` is overridden.
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
    # offered to the policies that randomise rule-based edits; False where the rule-based edit
    # is not the attribute it names (verbosity: length needs new content, an LLM rewrite)
    randomisable: ClassVar[bool] = True
    # enthusiasm (emoji, "Great question!", exclamation marks): never added to an answer to a
    # request about a serious harm topic (``fits`` reads the request where there is one)
    cheerful: ClassVar[bool] = False

    def applies(self, text: str) -> bool:
        """Whether the attribute can be switched on and off in this (base) text: detected and
        removable where present, addable where absent. Where it does not apply, an edit leaves
        the text alone and the attribute is not randomised for this response."""
        return True

    def two_way(self, text: str, can_add: Callable[[str], bool]) -> bool:
        """``applies`` for an editor that reads its attribute from the text: where the text has
        it, removal must take it away; where it has not, ``can_add`` says whether it fits."""
        if self.is_on(text):
            return not self.is_on(self.remove(text))
        return can_add(text)

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

    def add(self, text: str, seed: int, prompt: str | None = None) -> str:
        """Switch the attribute on in a text it was found to apply to *before* other edits (the
        base); ``apply`` checks ``applies`` on the text it gets, ``add`` does not, so an edit
        stacked before it (a closing line removed with its emoji) cannot change the verdict.
        ``prompt``: the request, for editors whose insertion depends on it (warm wishes)."""
        return self.apply(text, seed)

    def fits(self, text: str, prompt: str | None = None) -> bool:
        """``applies`` to the text, and for a cheerful attribute not absent from an answer to a
        request about a serious harm topic (it may still be taken away where the answer has it)."""
        if self.takes_donor:
            return True
        if not self.applies(text):
            return False
        return not (self.cheerful and prompt and not self.is_on(text) and serious(prompt))

    def remove(self, text: str) -> str:
        return text

    @abstractmethod
    def measure(self, text: str) -> float: ...

    def is_on(self, text: str) -> bool:
        return self.measure(text) > 0

    def check(self, base: str, edited: str, on: bool) -> bool:
        """Manipulation check: does ``edited`` show the attribute exactly when ``on``?"""
        return self.is_on(edited) == on


class InsertingEditor(Editor):
    """An editor that switches its attribute on by inserting it (``insert``): ``apply`` checks
    ``applies`` on the text it gets, ``add`` trusts the verdict read on the base text; both leave
    a text that already shows the attribute alone."""

    def apply(self, text: str, seed: int) -> str:
        return text if self.is_on(text) or not self.applies(text) else self.insert(text, seed)

    def add(self, text: str, seed: int, prompt: str | None = None) -> str:
        return text if self.is_on(text) else self.insert(text, seed, prompt)

    @abstractmethod
    def insert(self, text: str, seed: int, prompt: str | None = None) -> str:
        """The text with the attribute inserted; ``prompt``: the request, where the insertion
        depends on it (warm wishes)."""


DEFAULT_ATTRIBUTES = ("list_format", "bold")  # pass the audit on both pools, and carry no tone (docs/policies.md)


def quality_neutral(edit_vector: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether an edited copy keeps its parent's quality: no attribute it received (``realised``;
    a control whose edit failed changed nothing) is a positive control (``quality_changing``).
    LLM rewrites count by the attribute they rewrite."""
    return not any(realised_flag(entry) and attribute in EDITORS and EDITORS[attribute].quality_changing
                   for attribute, entry in edit_vector.items())


def apply_edit_vector(text: str, edit_vector: Mapping[str, Mapping[str, Any]],
                      donor: Callable[[int], str] | None = None,
                      prompt: str | None = None) -> tuple[str, dict[str, bool]]:
    """``edit_and_receive`` without the treatment received: ``(edited_text, manipulation_check)``."""
    edited, check, _ = edit_and_receive(text, edit_vector, donor, prompt)
    return edited, check


def edit_and_receive(text: str, edit_vector: Mapping[str, Mapping[str, Any]],
                     donor: Callable[[int], str] | None = None, prompt: str | None = None,
                     ) -> tuple[str, dict[str, bool], dict[str, dict[str, bool | None]]]:
    """Apply every switch in an edit vector to a base text, from its natural state: an attribute
    switched on is added where absent (kept where the text has it), one switched off is removed
    where present. An attribute that does not apply to the text (``Editor.applies``) is left
    alone whatever its switch.

    Args:
        text: the base response.
        edit_vector: ``{attribute: {"on": bool, "editor": name, "seed": int}}``.
        donor: ``seed -> text`` of a response written for another prompt, for editors that
            swap the answer (``off_topic``); the serving layer draws it from the pool.
        prompt: the request the response answers (``Editor.fits``: no cheer on a harmful one).

    Returns:
        ``(edited_text, manipulation_check, received)`` where the check maps each attribute to
        whether ``measure`` reads back what the vector asked for (once an answer is swapped in,
        the other editors are checked against the swapped-in text), and ``received`` is what
        ``treatment_received`` says, from the applicability this run already read (the serving
        path reads it once).
    """
    editors = sorted((get_editor(a) for a in edit_vector), key=lambda e: e.order)
    edited = reference = text
    for editor in editors:
        if editor.takes_donor and edit_vector[editor.name]["on"]:
            swap = cast(Callable[..., str], editor.apply)  # takes_donor: apply(text, seed, donor=...)
            edited = reference = swap(edited, int(edit_vector[editor.name]["seed"]), donor=donor)
    fits = {e.name: e.fits(reference, prompt) for e in editors}
    for editor in reversed(editors):
        if not edit_vector[editor.name]["on"] and fits[editor.name]:
            edited = editor.remove(edited)
    for editor in editors:
        if edit_vector[editor.name]["on"] and not editor.takes_donor and fits[editor.name]:
            edited = editor.add(edited, int(edit_vector[editor.name]["seed"]), prompt)
    for editor in reversed(editors):  # an edit that brought back an attribute switched off ("Sure!" and "!")
        if not edit_vector[editor.name]["on"] and fits[editor.name] and editor.readable_alone and editor.is_on(edited):
            edited = editor.remove(edited)
    check = {e.name: e.check(text if e.takes_donor else reference, edited, bool(edit_vector[e.name]["on"]))
             for e in editors}
    return edited, check, _received(edit_vector, check, fits)


def treatment_received(base_text: str, edit_vector: Mapping[str, Mapping[str, Any]],
                       check: dict[str, bool], prompt: str | None = None) -> dict[str, dict[str, bool | None]]:
    """What each attribute of an edited copy actually is, beside what was assigned.

    Returns:
        ``{attribute: {"applies": bool, "realised": bool | None}}``: ``applies`` whether the
        attribute could be switched in the base text; ``realised`` the treatment received,
        read by the manipulation check on the text served (the assigned switch where the check
        passed, its opposite where it failed), ``None`` where the attribute does not apply.
    """
    return _received(edit_vector, check, {a: get_editor(a).fits(base_text, prompt) for a in edit_vector})


def _received(edit_vector: Mapping[str, Mapping[str, Any]], check: dict[str, bool],
              fits: dict[str, bool]) -> dict[str, dict[str, bool | None]]:
    out: dict[str, dict[str, bool | None]] = {}
    for attribute, entry in edit_vector.items():
        assigned, passed = bool(entry["on"]), check.get(attribute, True)
        out[attribute] = {"applies": fits[attribute],
                          "realised": (assigned if passed else not assigned) if fits[attribute] else None}
    return out


def with_treatment(edit_vector: Mapping[str, Mapping[str, Any]],
                   received: dict[str, dict[str, bool | None]]) -> dict[str, dict[str, Any]]:
    """The edit vector as served: each entry keeps its assigned switch (``on``, with editor and
    seed) and gains ``applies`` and ``realised`` (``treatment_received``)."""
    return {a: {**entry, **received.get(a, {})} for a, entry in edit_vector.items()}


def realised_flag(entry: Mapping[str, Any] | None) -> bool | None:
    """The treatment an attribute's entry of a served edit vector received: ``realised`` where
    it was recorded (``None``: the attribute did not apply), else the assigned switch (pairs
    served before the realised treatment was recorded); ``None`` where not randomised."""
    if entry is None:
        return None
    if "realised" in entry:
        return None if entry["realised"] is None else bool(entry["realised"])
    return bool(entry.get("on"))
