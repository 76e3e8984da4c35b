"""The markup style editors: lists, headers, bold, exclamation marks and emoji.

Each one is two-way on natural texts: ``is_on`` detects the attribute where a real response
already has it, ``remove`` takes it away and ``apply`` adds it, and ``applies`` says where it fits
at all (a list needs three sentences to become items, headers a long multi-paragraph reply,
emoji never go on a refusal or a serious harm topic). Lists and headers are made of the reply's
own sentences and words, bold marks its own figures, names and repeated terms. Every word of the
original survives, in order; ``tests/acquisition/test_editors.py`` checks that and the round trip
for every style editor. Hedges, openers and closings are in ``phrasing``.
"""

from __future__ import annotations

import functools
import random
import re
from collections import Counter

from acquisition.editors import lexicon as lx
from acquisition.editors.editor import (
    Editor,
    InsertingEditor,
    _join_blocks,
    _map_prose,
    _prose,
    _segments,
    _split_blocks,
    register_editor,
    word_count,
)
from acquisition.editors.sentences import BULLET, MARKERS, opens_agreeably, sentence_spans, upper_first


# -------------------------------------------------------------------------------------------- lists
def _join_items(items: list[str], lead: str | None) -> tuple[str, bool]:
    """List items as running prose: ``(text, merged_into_lead)``. Short fragments become a
    series ("a, b and c"), sentences are joined with their own punctuation."""
    items = [i.strip().rstrip(";,") for i in items if i.strip()]
    fragments = all(len(i.split()) <= 5 and not i.endswith((".", "!", "?", ":")) for i in items)
    if fragments and len(items) > 1:
        series = ", ".join(items[:-1]) + " and " + items[-1]
        if lead is not None and lead.rstrip().endswith(":"):
            return f"{lead.rstrip()} {series}.", True
        return upper_first(series) + ".", False
    sentences = [upper_first(i) if i.endswith((".", "!", "?")) else upper_first(i) + "." for i in items]
    return " ".join(sentences), False


# a sentence that leans on the one before it ("And ...", "Well, ...") is not a list item of its own
_CONTINUES = re.compile(r"[\uE000-\uF8FF\s]*(?:and|but|or|so|well|also|then|plus|though|however|because|which|"
                        r"that|this|it|they|he|she|i)\b", re.I)  # "I ..." items read as a reply cut up


@register_editor
class ListFormat(Editor):
    name = "list_format"
    description = "The sentences of a paragraph as a bullet or numbered list (three items or more)."
    order = 10
    min_items = 3

    def _list_paragraph(self, masked: str) -> list[tuple[int, int]] | None:
        """The sentence spans of a one-line paragraph that can become a list, else None."""
        if "\n" in masked or BULLET.match(masked):
            return None
        spans = sentence_spans(masked)
        usable = [masked[s:e] for s, e in spans]
        items = usable[1:] if len(spans) > self.min_items else usable  # the first sentence leads in, or is an item
        if len(spans) < self.min_items or any(len(u.split()) < 5 or u.endswith("?") for u in usable) or any(
                _CONTINUES.match(u) for u in items):
            return None
        return spans

    def _can_add(self, text: str) -> bool:
        found = False

        def look(run: str) -> str:
            nonlocal found
            found = found or self._list_paragraph(run) is not None
            return run

        _map_prose(text, look)
        return found

    def applies(self, text: str) -> bool:
        return self.two_way(text, self._can_add)

    def apply(self, text: str, seed: int) -> str:
        if self.is_on(text) or not self._can_add(text):
            return text
        rng = random.Random(seed)
        style = rng.choice(("- ", "* ", "1. "))
        best: list[int] = [0, -1]  # (sentences, run index) of the longest convertible paragraph
        runs = 0

        def measure_run(run: str) -> str:
            nonlocal runs
            spans = self._list_paragraph(run)
            if spans and len(spans) > best[0]:
                best[:] = [len(spans), runs]
            runs += 1
            return run

        _map_prose(text, measure_run)
        position = 0

        def to_list(run: str) -> str:
            nonlocal position
            position += 1
            if position - 1 != best[1]:
                return run
            sentences = [run[s:e] for s, e in self._list_paragraph(run) or []]
            lead = sentences.pop(0) if len(sentences) > self.min_items else None
            items = [f"{f'{n}. ' if style == '1. ' else style}{s}" for n, s in enumerate(sentences, 1)]
            return "\n".join(([lead] if lead else []) + items)

        return _map_prose(text, to_list)

    def remove(self, text: str) -> str:
        def unlist(run: str) -> str:
            lines = run.split("\n")
            out: list[str] = []
            i = 0
            while i < len(lines):
                if not BULLET.match(lines[i]):
                    out.append(lines[i])
                    i += 1
                    continue
                items: list[str] = []
                while i < len(lines) and (BULLET.match(lines[i]) or (items and lines[i][:1] in (" ", "\t"))):
                    if BULLET.match(lines[i]):
                        items.append(BULLET.sub("", lines[i]))
                    else:
                        items[-1] += " " + lines[i].strip()
                    i += 1
                lead = out[-1] if out else None
                joined, merged = _join_items(items, lead)
                if merged:
                    out[-1] = joined
                elif lead is not None:
                    out[-1] = f"{lead.rstrip()} {joined}"
                else:
                    out.append(joined)
            return "\n".join(out)

        return _map_prose(text, unlist, keep=MARKERS)

    def measure(self, text: str) -> float:
        return float(sum(bool(BULLET.match(line)) for line in _prose(text).split("\n")))


# ------------------------------------------------------------------------------------------ headers
_WORD = re.compile(r"(?<![\w'’-])[A-Za-z][A-Za-z-]*[A-Za-z](?![\w'’-])")


def _content(word: str) -> bool:
    return len(word) >= 3 and word.lower() not in lx.FUNCTION_WORDS


def _title(block: str, taken: set[str]) -> str | None:
    """A short section title from the block's own words: its first run of two or three content
    words, else its most repeated content word."""
    words = [m.group(0) for m in _WORD.finditer(block)]
    run: list[str] = []
    for w in words:
        if _content(w):
            run.append(w)
            if len(run) == 3:
                break
        elif len(run) >= 2:
            break
        else:
            run = []
    if len(run) < 2:
        counts = Counter(w.lower() for w in words if _content(w))
        run = [counts.most_common(1)[0][0]] if counts else []
    title = " ".join(run)
    if not title or title.lower() in taken:
        return None
    taken.add(title.lower())
    return title[0].upper() + title[1:]


@register_editor
class Headers(Editor):
    name = "headers"
    description = "Section headers, titled with each section's own words, over a long multi-paragraph reply."
    order = 20
    _header = re.compile(r"^#{1,6} .*$", re.M)
    min_words = 150

    def _sections(self, text: str) -> list[tuple[str, str]] | None:
        blocks = _split_blocks(text)
        if sum(k == "prose" for k, _ in blocks) < 3 or word_count(text) < self.min_words:
            return None
        return blocks

    def applies(self, text: str) -> bool:
        return self.two_way(text, lambda t: self._sections(t) is not None)

    def apply(self, text: str, seed: int) -> str:
        blocks = self._sections(text)
        if self.is_on(text) or blocks is None:
            return text
        level = random.Random(seed).choice(("##", "###"))
        out: list[tuple[str, str]] = []
        taken: set[str] = set()
        for i, (kind, block) in enumerate(blocks):
            title = _title(block, taken) if i > 0 and kind == "prose" else None
            if title:
                out.append(("raw", f"{level} {title}"))
            out.append((kind, block))
        return _join_blocks(out)

    def remove(self, text: str) -> str:
        """Drop heading lines (and bold-only title lines), with the blank line after each."""
        out: list[str] = []
        skipping = False
        for kind, piece in _segments(text):
            if (kind == "raw" and self._header.match(piece.strip())) or (
                    kind == "prose" and re.fullmatch(r"\*\*[^*\n]{1,60}\*\*", piece.strip())):
                skipping = True
                continue
            if skipping and kind in ("eol", "blank"):
                continue
            skipping = False
            out.append(piece)
        return "".join(out).strip("\n")

    def measure(self, text: str) -> float:
        titles = [p for k, p in _segments(text) if k == "prose" and re.fullmatch(r"\*\*[^*\n]{1,60}\*\*", p.strip())]
        return float(len(self._header.findall(_prose(text))) + len(titles))



# --------------------------------------------------------------------------------------------- bold
_NUMBER = re.compile(
    r"(?<![\w.$'’*-])\$?\d[\d,.]*\d?(?:\s?%|\s(?:percent|hours?|minutes?|seconds?|days?|weeks?|months?|years?|miles?|"
    r"kilomet(?:re|er)s?|km|kg|grams?|pounds?|dollars?|degrees?|times|cups?|calories|people|feet|inches))?(?![\w'’*-]|[.,]\d)"
)
_VERB_FORM = re.compile(r"(?:ing|ed|ly)$", re.I)
_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*(?![\w'’])")


@functools.lru_cache(maxsize=256)
def _bold_candidates(text: str) -> tuple[str, ...]:
    """Phrases worth bolding, best first: figures and names, then the content words the reply
    repeats (its key terms); function words and parts of contractions never. Kept per text: a
    request asks for them several times (``applies`` both ways, then ``insert``)."""
    runs: list[str] = []

    def keep(run: str) -> str:  # the prose as editors see it, protected spans masked
        runs.append(run)
        return run

    _map_prose(text, keep)
    masked = re.sub(r"[\uE000-\uF8FF]", " ", "\n".join(runs))
    figures = [m.group(0) for m in _NUMBER.finditer(masked)]
    names = [m.group(0) for m in _NAME.finditer(masked) if m.group(0).split()[0].lower() not in lx.FUNCTION_WORDS]
    words = [m.group(0) for m in _WORD.finditer(masked) if _content(m.group(0))]
    counts = Counter(w.lower() for w in words)
    # key terms: repeated content words, not "trying" or "called"; ties in the order they first
    # appear (a set's order changes with each process's string hashing, and so did the edit)
    repeated = sorted(dict.fromkeys(w for w in words if counts[w.lower()] >= 2 and len(w) >= 4 and not _VERB_FORM.search(w)),
                      key=lambda w: -counts[w.lower()])
    seen: set[str] = set()
    out = []
    for phrase in figures + names + repeated:
        if phrase.lower() not in seen:
            seen.add(phrase.lower())
            out.append(phrase)
    return tuple(out)


@register_editor
class Bold(InsertingEditor):
    name = "bold"
    description = "The reply's key terms, names and figures set in **bold** (about one per 50 words)."
    order = 30
    _span = re.compile(r"\*\*([^*\n]+)\*\*|__([^_\n]+)__")
    min_words = 20

    def _candidates(self, text: str) -> tuple[str, ...]:
        return _bold_candidates(text)

    def applies(self, text: str) -> bool:
        return self.two_way(text, lambda t: word_count(_prose(t)) >= self.min_words and bool(self._candidates(t)))

    def insert(self, text: str, seed: int, prompt: str | None = None) -> str:
        rng = random.Random(seed)
        candidates = self._candidates(text)
        count = max(1, min(5, round(word_count(text) / 50)))
        strong = candidates[:max(count, min(len(candidates), 2 * count))]
        picks = {p.lower() for p in rng.sample(strong, min(count, len(strong)))}
        done: set[str] = set()

        def embolden(run: str) -> str:
            def mark(m: re.Match[str]) -> str:
                phrase = m.group(0)
                if phrase.lower() in done:
                    return phrase
                done.add(phrase.lower())
                return f"**{phrase}**"

            # the boundary checks once around the alternation (re backtracks into it as it would
            # across separate alternatives): compiling their character classes once per phrase
            # was a tenth of a request's CPU
            phrases = "|".join(re.escape(p) for p in sorted(picks - done, key=len, reverse=True))
            return re.sub(rf"(?<![\w'’*$.-])(?:{phrases})(?![\w'’*-])", mark, run, flags=re.I) if phrases else run

        return _map_prose(text, embolden)

    def remove(self, text: str) -> str:
        return _map_prose(text, lambda p: self._span.sub(lambda m: m.group(1) or m.group(2), p), keep=frozenset({"strong"}))

    def measure(self, text: str) -> float:
        return float(len(self._span.findall(_prose(text))))


# -------------------------------------------------------------------------------------- exclamation
@register_editor
class Exclamation(InsertingEditor):
    name = "exclamation"
    description = "Sentences end in exclamation marks instead of full stops."
    order = 40
    cheerful = True

    def applies(self, text: str) -> bool:
        return self.two_way(text, lambda t: re.search(r"\w\.(?=\s|$)", _prose(t)) is not None and not lx.refuses(t))

    def insert(self, text: str, seed: int, prompt: str | None = None) -> str:
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
        return _map_prose(text, lambda p: re.sub(r"!+(?=\s|$)", ".", p))

    def measure(self, text: str) -> float:
        return float(len(re.findall(r"!(?=\s|$)", _prose(text))))


# -------------------------------------------------------------------------------------------- emoji
@register_editor
class Emoji(InsertingEditor):
    name = "emoji"
    description = ("An emoji or two at paragraph ends, topical where the paragraph calls for one; "
                   "never on a refusal or a serious topic.")
    order = 50
    cheerful = True

    @staticmethod
    def _closes(line: str) -> bool:
        """A line an emoji can end: a finished statement of five words or more (not a question, a
        heading, a line cut off mid-sentence or a one-word list item)."""
        body = line.rstrip()
        return len(body.split()) >= 5 and re.search(r"[.!][\"'”’)]?$", body) is not None and not body.startswith("#")

    def applies(self, text: str) -> bool:
        def can_add(t: str) -> bool:
            lines: list[str] = []

            def keep(run: str) -> str:
                lines.extend(run.split("\n"))
                return run

            _map_prose(t, keep)
            return (word_count(t) >= 8 and not lx.refuses(t) and not lx.serious(t) and opens_agreeably(t)
                    and any(map(self._closes, lines)))

        return self.two_way(text, can_add)

    def insert(self, text: str, seed: int, prompt: str | None = None) -> str:
        rng = random.Random(seed)
        ends: list[bool] = []  # per prose line: a statement line an emoji can close

        def count(run: str) -> str:
            ends.extend(self._closes(line) for line in run.split("\n"))
            return run

        _map_prose(text, count)
        places = [i for i, ok in enumerate(ends) if ok]
        if not places:
            return text
        wanted = max(1, min(3, len(places) // 3 + 1))
        chosen = set(rng.sample(places[:-1], min(wanted - 1, len(places) - 1))) | {places[-1]}
        index = 0

        def decorate(run: str) -> str:
            nonlocal index
            out = []
            for line in run.split("\n"):
                if index in chosen:
                    topical = [e for pattern, emoji in lx.EMOJI_TOPICAL if re.search(pattern, line, re.I) for e in emoji]
                    pool = topical if topical and rng.random() < 0.3 else list(lx.EMOJI_GENERIC)
                    line = f"{line.rstrip()} {rng.choice(pool)}"
                index += 1
                out.append(line)
            return "\n".join(out)

        return _map_prose(text, decorate)

    def remove(self, text: str) -> str:
        return _map_prose(text, lambda p: re.sub(r" ?" + lx.EMOJI.pattern, "", p))

    def measure(self, text: str) -> float:
        return float(len(lx.EMOJI.findall(_prose(text))))
