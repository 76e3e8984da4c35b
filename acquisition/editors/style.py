"""The style editors: attributes reward models learn as spurious features; each keeps every
word of the original, in order."""

from __future__ import annotations

import random
import re

from acquisition.editors.editor import (
    MASKS,
    Editor,
    _join_blocks,
    _map_prose,
    _prose,
    _segments,
    _sentences,
    _split_blocks,
    register_editor,
    word_count,
)

MARKERS = frozenset({"marker"})  # list markers left visible, for the editors that read them


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

        return _map_prose(text, unlist, keep=MARKERS)

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
        out = [("raw", f"## {rng.choice(self._titles)}")]
        for i, block in enumerate(blocks):
            if i == 2:
                out.append(("raw", f"### {rng.choice(self._later)}"))
            out.append(block)
        return _join_blocks(out)

    def remove(self, text: str) -> str:
        """Drop heading lines (outside code), with the line break and blank line after each."""
        out: list[str] = []
        skipping = False
        for kind, piece in _segments(text):
            if kind == "raw" and self._header.match(piece.strip()):
                skipping = True
                continue
            if skipping and kind in ("eol", "blank"):
                continue
            skipping = False
            out.append(piece)
        return "".join(out).strip("\n")

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

        return _map_prose(text, hedge_para, keep=MARKERS)

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
        return _map_prose(text, lambda p: self._span.sub(r"\1", p), keep=frozenset({"strong"}))

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
        """Only the references line this editor adds; links the response had stay (they are
        content: a response with its own links reads as on, and its manipulation check says so)."""
        return re.sub(r"\n\nSources: (?:\[[^\]\n]+\]\(https?://[^)\s]+\)(?: and )?)+\.$", "", text)

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
    unedited = "unknown"  # padding is an amount relative to the base

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
        first = next((kind for kind, piece in _segments(text.lstrip()) if kind not in ("eol", "blank")), "prose")
        block_start = first != "prose" or re.match(MASKS["marker"], text.lstrip()) is not None
        return f"{opener}{chr(10) * 2 if block_start else ' '}{text}"

    def remove(self, text: str) -> str:
        for opener in self._openers:
            if text.lstrip().startswith(opener):
                return text.lstrip()[len(opener):].lstrip()
        return text

    def measure(self, text: str) -> float:
        return float(any(text.lstrip().startswith(o) for o in self._openers))
