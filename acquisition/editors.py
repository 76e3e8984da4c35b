"""Attribute editors: seeded, deterministic ``text -> text`` switches with a read-back measure.

Each editor changes one stylistic attribute that reward models are known to learn as a
spurious feature (length, lists, bold, emoji, sycophantic openers, hedging, ...) and keeps
the content: every word of the original survives, in order (``tests/test_editors.py``
checks this for every registered editor). ``measure`` reads the attribute back so each
edited copy can store a manipulation check.

References: Singhal et al., *A Long Way to Go: Investigating Length Correlations in RLHF*
(2023); Zhang et al., *From Lists to Emojis: How Format Bias Affects Model Alignment* (2024);
Sharma et al., *Towards Understanding Sycophancy in Language Models* (2023).
"""

from __future__ import annotations

from collections.abc import Callable

import random
import re
import zlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from collector.errors import ConfigError

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
    readable_alone: ClassVar[bool] = True  # False: `measure` of one text cannot tell (needs the base)
    takes_donor: ClassVar[bool] = False  # True: `apply` accepts `donor`, texts written for other prompts

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


@register_editor
class ListFormat(Editor):
    name = "list_format"
    description = "Sentences of each prose paragraph become a bullet list."
    order = 10
    _bullet = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+", re.M)

    def apply(self, text: str, seed: int) -> str:
        if self.is_on(text):
            return text

        def to_list(para: str) -> str:
            return "\n".join(f"- {s}" for s in _sentences(para))

        return _map_prose(text, to_list)

    def remove(self, text: str) -> str:
        def unlist(para: str) -> str:
            lines = para.split("\n")
            if not all(self._bullet.match(line) for line in lines if line.strip()):
                return para
            return " ".join(self._bullet.sub("", line).strip() for line in lines if line.strip())

        return _map_prose(text, unlist)

    def measure(self, text: str) -> float:
        return float(len(self._bullet.findall(_prose(text))))


@register_editor
class Headers(Editor):
    name = "headers"
    description = "Markdown section headers above the answer and its later paragraphs."
    order = 20
    _titles = ("Overview", "Answer", "Summary", "Key points", "In brief")
    _later = ("Details", "More detail", "Further notes", "Background")
    _header = re.compile(r"^#{1,6} .*$", re.M)

    def apply(self, text: str, seed: int) -> str:
        if self.is_on(text):
            return text
        rng = random.Random(seed)
        blocks = _split_blocks(text)
        out = [(False, f"## {rng.choice(self._titles)}")]
        for i, block in enumerate(blocks):
            if i == 2:
                out.append((False, f"### {rng.choice(self._later)}"))
            out.append(block)
        return _join_blocks(out)

    def remove(self, text: str) -> str:
        return _map_prose(text, lambda p: self._header.sub("", p).strip())

    def measure(self, text: str) -> float:
        return float(len(self._header.findall(_prose(text))))


@register_editor
class Hedging(Editor):
    name = "hedging"
    description = "Hedges and vague qualifiers in front of the first sentences."
    order = 25
    _hedges = (
        # each works in front of any sentence, imperative ones included
        "I could be wrong, but", "Generally speaking,", "In some cases,",
        "As far as I can tell,", "If I am not mistaken,", "In most situations,",
    )
    _pattern = re.compile("|".join(re.escape(h) for h in _hedges), re.I)

    def apply(self, text: str, seed: int) -> str:
        if self.is_on(text):
            return text
        hedges = random.Random(seed).sample(self._hedges, 2)
        used = 0

        def hedge_para(para: str) -> str:
            nonlocal used
            lines = para.split("\n")
            for j, line in enumerate(lines):
                marker = re.match(r"^\s*(?:[-*+]|\d+[.)])\s+", line)
                if used >= 2 or line.startswith("#"):
                    continue
                prefix = marker.group(0) if marker else ""
                sents = _sentences(line[len(prefix):])
                for i in range(min(len(sents), 2 - used)):
                    s = sents[i]
                    first = s[0].lower() if s[:2] != s[:2].upper() else s[0]
                    sents[i] = f"{hedges[used]} {first}{s[1:]}"
                    used += 1
                lines[j] = prefix + " ".join(sents)
            return "\n".join(lines)

        return _map_prose(text, hedge_para)

    def remove(self, text: str) -> str:
        def unhedge(para: str) -> str:
            out = self._pattern.sub("", para)
            out = re.sub(r"(^|(?<=[.!?] ))\s*([a-z])", lambda m: m.group(1) + m.group(2).upper(), out)
            return re.sub(r"  +", " ", out).strip()

        return _map_prose(text, unhedge) if self.is_on(text) else text

    def measure(self, text: str) -> float:
        return float(len(self._pattern.findall(_prose(text).replace("**", ""))))


@register_editor
class Bold(Editor):
    name = "bold"
    description = "Key words set in **bold**."
    order = 30
    _span = re.compile(r"\*\*([^*\n]+)\*\*")

    def apply(self, text: str, seed: int) -> str:
        if self.is_on(text):
            return text
        rng = random.Random(seed)

        def embolden(para: str) -> str:
            if para.startswith("#"):
                return para
            words = list(re.finditer(r"\b[A-Za-z][A-Za-z'-]{5,}\b", para))
            if not words:
                words = list(re.finditer(r"\b\w{3,}\b", para))
            picks = sorted(rng.sample(words, min(2, len(words))), key=lambda m: m.start())
            out, pos = [], 0
            for m in picks:
                out += [para[pos:m.start()], f"**{m.group(0)}**"]
                pos = m.end()
            return "".join(out) + para[pos:]

        return _map_prose(text, embolden)

    def remove(self, text: str) -> str:
        return _map_prose(text, lambda p: self._span.sub(r"\1", p))

    def measure(self, text: str) -> float:
        return float(len(self._span.findall(_prose(text))))


@register_editor
class Exclamation(Editor):
    name = "exclamation"
    description = "Sentences end in exclamation marks instead of full stops."
    order = 40

    def apply(self, text: str, seed: int) -> str:
        if self.is_on(text):
            return text
        rng = random.Random(seed)

        def exclaim(para: str) -> str:
            lines = para.split("\n")
            out = []
            for line in lines:
                if line.startswith("#"):
                    out.append(line)
                    continue
                # at least the first sentence end of every line, others at random
                parts = re.split(r"(?<=\.)(\s+|$)", line)
                first = True
                rebuilt = []
                for part in parts:
                    if part.endswith(".") and not part.endswith("..") and (first or rng.random() < 0.5):
                        part = part[:-1] + "!"
                        first = False
                    rebuilt.append(part)
                out.append("".join(rebuilt))
            return "\n".join(out)

        return _map_prose(text, exclaim)

    def remove(self, text: str) -> str:
        return _map_prose(text, lambda p: re.sub(r"!(?=\s|$)", ".", p))

    def measure(self, text: str) -> float:
        return float(len(re.findall(r"!(?=\s|$)", _prose(text))))


@register_editor
class Emoji(Editor):
    name = "emoji"
    description = "Emoji at the end of paragraphs and list items."
    order = 50
    _emoji = ("✨", "👍", "🚀", "😊", "💡", "✅", "🎯", "🙌")
    _pattern = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF]")

    def apply(self, text: str, seed: int) -> str:
        if self.is_on(text):
            return text
        rng = random.Random(seed)

        def decorate(para: str) -> str:
            lines = para.split("\n")
            return "\n".join(
                line if line.startswith("#") else f"{line} {rng.choice(self._emoji)}" for line in lines
            )

        return _map_prose(text, decorate)

    def remove(self, text: str) -> str:
        return _map_prose(text, lambda p: re.sub(r" ?[\U0001F300-\U0001FAFF\u2600-\u27BF]\uFE0F?", "", p))

    def measure(self, text: str) -> float:
        return float(len(self._pattern.findall(_prose(text))))


@register_editor
class Citations(Editor):
    name = "citations"
    description = "A references line with links that add no information."
    order = 60
    _sources = (
        ("Wikipedia", "https://en.wikipedia.org/wiki/Main_Page"),
        ("Encyclopaedia Britannica", "https://www.britannica.com/"),
        ("Stack Overflow", "https://stackoverflow.com/"),
        ("Khan Academy", "https://www.khanacademy.org/"),
        ("the Python documentation", "https://docs.python.org/3/"),
    )
    _link = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")

    def apply(self, text: str, seed: int) -> str:
        if self.is_on(text):
            return text
        rng = random.Random(seed)
        picks = rng.sample(self._sources, 2)
        refs = " and ".join(f"[{name}]({url})" for name, url in picks)
        return f"{text}\n\nSources: {refs}."

    def remove(self, text: str) -> str:
        text = re.sub(r"\n\nSources: [^\n]*$", "", text)
        return self._link.sub(r"\1", text)

    def measure(self, text: str) -> float:
        return float(len(self._link.findall(text)) + len(re.findall(r"(?<!\()https?://", text)))


_INTROS = (
    "This is an important topic, and it deserves a clear and thorough answer.",
    "It is worth taking a moment to think about this carefully before answering.",
    "There are a few things to consider here, so let us go through them in turn.",
)
_FILLERS = (
    "To put it another way, the points above capture the heart of the matter.",
    "It is worth taking a moment to consider each of these points carefully.",
    "Keeping all of this in mind will make the whole picture much easier to see.",
    "Each of these considerations plays its own part in the overall answer.",
    "Taken together, these ideas form a complete and coherent explanation.",
    "With that context in place, the rest follows quite naturally.",
    "Thinking it through step by step like this usually pays off in the end.",
)


@register_editor
class Verbosity(Editor):
    name = "verbosity"
    description = "Filler sentences that add length but no information (at least +40% words)."
    order = 70
    readable_alone = False
    min_ratio = 1.3

    def apply(self, text: str, seed: int) -> str:
        rng = random.Random(seed)
        fillers = list(_FILLERS)
        rng.shuffle(fillers)
        target = max(word_count(text) * 0.45, 20)
        intro = rng.choice(_INTROS)
        added, pads = word_count(intro), []
        while added < target and fillers:
            pads.append(fillers.pop())
            added += word_count(pads[-1])
        return f"{intro}\n\n{text}\n\n{' '.join(pads)}".strip()

    def measure(self, text: str) -> float:
        return float(word_count(text))

    def check(self, base: str, edited: str, on: bool) -> bool:
        """On: the filler sentences are there (read back from the text, robust to other edits
        such as drop_answer shortening the same response); off: none were added."""
        fillers = sum(edited.count(f) for f in _INTROS + _FILLERS) - sum(base.count(f) for f in _INTROS + _FILLERS)
        return fillers >= 2 if on else fillers <= 0


@register_editor
class ClosingPleasantry(Editor):
    name = "closing_pleasantry"
    description = "A friendly closing line offering more help."
    order = 80
    _closers = (
        "I hope this helps. Let me know if you have any other questions.",
        "Happy to help further if anything is unclear.",
        "Feel free to reach out if you would like more detail on any of this.",
        "I hope you found this useful, and good luck.",
    )

    def apply(self, text: str, seed: int) -> str:
        if self.is_on(text):
            return text
        return f"{text}\n\n{random.Random(seed).choice(self._closers)}"

    def remove(self, text: str) -> str:
        for closer in self._closers:
            if text.rstrip().endswith(closer):
                return text.rstrip()[: -len(closer)].rstrip()
        return text

    def measure(self, text: str) -> float:
        return float(any(text.rstrip().endswith(c) for c in self._closers))


@register_editor
class SycophanticOpener(Editor):
    name = "sycophantic_opener"
    description = "A flattering, affirmative opener before the answer."
    order = 90
    _openers = (
        "Great question.",
        "What a thoughtful question, thank you for asking.",
        "Absolutely, you are right to ask about this.",
        "Excellent question, and a very insightful one.",
        "Certainly, I would be delighted to help with this.",
    )

    def apply(self, text: str, seed: int) -> str:
        if self.is_on(text):
            return text
        opener = random.Random(seed).choice(self._openers)
        block_start = text.lstrip().startswith(("#", "-", "*", "`", "|", ">"))
        return f"{opener}{chr(10) * 2 if block_start else ' '}{text}"

    def remove(self, text: str) -> str:
        for opener in self._openers:
            if text.lstrip().startswith(opener):
                return text.lstrip()[len(opener):].lstrip()
        return text

    def measure(self, text: str) -> float:
        return float(any(text.lstrip().startswith(o) for o in self._openers))


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _contains_run(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


@register_editor
class DropAnswer(Editor):
    """Positive control: the response loses the part that answers the question (its code block
    if it has one, else its first sentence), so annotators should prefer it less."""

    name = "drop_answer"
    description = "Quality control: removes the code block or the first sentence, which carries the answer."
    order = 1
    quality_changing = True
    default_effect = -2.0

    def _answer(self, text: str) -> str | None:
        blocks = _split_blocks(text)
        code = [b for c, b in blocks if c]
        if code:
            return code[0]
        prose = [b for c, b in blocks if not c]
        if not prose or sum(len(_sentences(b)) for b in prose) < 2:
            return None
        end = re.search(r"(?<=[.!?])\s+", prose[0])
        return prose[0][:end.start()] if end else prose[0]

    def apply(self, text: str, seed: int) -> str:
        answer = self._answer(text)
        if answer is None:
            return text
        out = text.replace(answer, "", 1)
        return re.sub(r"\n{3,}", "\n\n", re.sub(r"^ +| +$", "", out, flags=re.M)).strip()

    def measure(self, text: str) -> float:
        return float(word_count(text))

    def check(self, base: str, edited: str, on: bool) -> bool:
        answer = self._answer(base)
        if answer is None:
            return not on
        present = _contains_run(_tokens(edited), _tokens(answer))
        return present != on


DEFAULT_ATTRIBUTES = ("verbosity", "list_format", "sycophantic_opener", "bold", "emoji", "hedging")


_OTHER_PROMPT_ANSWERS = (
    "The capital of Australia is Canberra, not Sydney. It was chosen in 1908 as a compromise "
    "between Sydney and Melbourne, and Parliament moved there in 1927.",
    "To remove a red wine stain, blot it at once, cover it with salt or baking soda, then rinse "
    "with cold water. Hot water sets the stain.",
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen. It happens in "
    "the chloroplasts, mostly in the leaves.",
    "A 30-year fixed mortgage keeps the same rate for the whole term. The monthly payment for "
    "principal and interest never changes, though taxes and insurance can.",
    "Knead the dough for about ten minutes, until it is smooth and springs back when pressed. "
    "Then let it rise somewhere warm until doubled.",
    "The French Revolution began in 1789 with the storming of the Bastille. It ended the absolute "
    "monarchy of Louis XVI.",
    "Tomatoes need six to eight hours of direct sun a day. Water them deeply two or three times a "
    "week rather than a little every day.",
    "In chess, castling moves the king two squares towards a rook and puts that rook on the other "
    "side of the king. Neither piece may have moved before.",
)


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 4}


@register_editor
class OffTopic(Editor):
    """Positive control: the response is replaced by an answer written for a different prompt
    (from the pool when the serving layer offers one, else from a built-in set), so it no
    longer answers the question at all."""

    name = "off_topic"
    description = "Quality control: the response is swapped for an answer to a different prompt."
    order = 0  # first: style edits on the same side apply to the swapped-in answer
    quality_changing = True
    default_effect = -3.0
    readable_alone = False
    takes_donor = True
    max_overlap = 0.25  # share of the base's content words an unrelated answer may still contain

    def apply(self, text: str, seed: int, donor: Callable[[int], str] | None = None) -> str:
        candidates = [donor(seed)] if donor is not None else []
        candidates += [_OTHER_PROMPT_ANSWERS[(seed + k) % len(_OTHER_PROMPT_ANSWERS)]
                       for k in range(len(_OTHER_PROMPT_ANSWERS))]
        for candidate in candidates:
            if candidate and self._overlap(text, candidate) < self.max_overlap:
                return candidate
        return candidates[-1]

    @staticmethod
    def _overlap(base: str, edited: str) -> float:
        words = _content_words(base)
        return len(words & _content_words(edited)) / len(words) if words else 0.0

    def measure(self, text: str) -> float:
        return 0.0  # whether an answer fits its prompt cannot be read from the answer alone

    def check(self, base: str, edited: str, on: bool) -> bool:
        """On: under a quarter of the base's content words remain; off: at least a quarter do
        (drop_answer may have removed the rest)."""
        return (self._overlap(base, edited) < self.max_overlap) == on


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
            edited = reference = editor.apply(edited, int(edit_vector[editor.name]["seed"]), donor=donor)
    for editor in reversed(editors):
        if not edit_vector[editor.name]["on"]:
            edited = editor.remove(edited)
    for editor in editors:
        if edit_vector[editor.name]["on"] and not editor.takes_donor:
            edited = editor.apply(edited, int(edit_vector[editor.name]["seed"]))
    check = {e.name: e.check(text if e.takes_donor else reference, edited, bool(edit_vector[e.name]["on"]))
             for e in editors}
    return edited, check
