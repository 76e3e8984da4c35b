"""The style editors: attributes reward models learn as spurious features.

Each one is two-way on natural texts: ``is_on`` detects the attribute where a real response
already has it (a natural "I think", "Sure!", bullet list or "Hope this helps!"), ``remove``
takes it away and ``apply`` adds it, and ``applies`` says where it fits at all (a list needs
three sentences to become items, headers need a long multi-paragraph reply, cheer never goes
on a refusal or a serious harm topic). Insertions come from content (bold marks the reply's own
terms, names and figures; lists and headers are made of its own sentences and words) or from a
large pool of natural phrasings (hedges, openers, closings, emoji), so no single string becomes
a template. Every word of the original survives, in order; ``tests/acquisition/test_editors.py``
checks that and the round trip for every style editor.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable

from acquisition.editors import lexicon as lx
from acquisition.editors.editor import (
    Editor,
    _join_blocks,
    _map_prose,
    _prose,
    _segments,
    _split_blocks,
    register_editor,
    word_count,
)

MARKERS = frozenset({"marker"})  # list markers left visible, for the editors that read them
_BULLET = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])[\"'”’)\]]*(\s+)(?=[\"'“‘(\[]?[A-Z0-9\uE000-\uF8FF])")
_HIDDEN = re.compile(r"^[\uE000-\uF8FF\s]*")  # masked markers, links or code at a sentence start


def sentence_spans(line: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of one line, whitespace between them left out."""
    spans, start = [], 0
    for m in _SENTENCE_BREAK.finditer(line):
        spans.append((start, m.start(1)))  # closing quotes and brackets stay with their sentence
        start = m.end()
    if line[start:].strip():
        spans.append((start, len(line.rstrip())))
    return spans


def _statement(sentence: str) -> bool:
    """A declarative sentence whose first word can be lowercased after an inserted hedge."""
    body = _HIDDEN.sub("", sentence)
    return (len(body.split()) >= 4 and not body.rstrip().endswith("?") and lx.STATEMENT_START.match(body) is not None
            and not lx.refuses(body))


def _lower_first(sentence: str) -> str:
    """The sentence with its first word lowercased (only called on ``_statement`` sentences)."""
    lead = _HIDDEN.match(sentence)
    i = lead.end() if lead else 0
    return sentence[:i] + sentence[i].lower() + sentence[i + 1:] if i < len(sentence) else sentence


def _upper_first(text: str) -> str:
    lead = _HIDDEN.match(text)
    i = lead.end() if lead else 0
    return text[:i] + text[i].upper() + text[i + 1:] if i < len(text) else text


def _edit_sentences(text: str, eligible: Callable[[str], bool], edit: Callable[[str, random.Random], str],
                    count: int, seed: int) -> str:
    """``edit`` applied to ``count`` sentences drawn (seeded) among the ``eligible`` ones of
    the prose; code, structure and protected spans are left alone."""
    found = 0

    def collect(run: str) -> str:
        nonlocal found
        for line in run.split("\n"):
            found += sum(eligible(line[s:e]) for s, e in sentence_spans(line))
        return run

    _map_prose(text, collect)
    if not found:
        return text
    rng = random.Random(seed)
    chosen = set(rng.sample(range(found), min(count, found)))
    index = 0

    def rewrite(run: str) -> str:
        nonlocal index
        lines = []
        for line in run.split("\n"):
            out, pos = [], 0
            for s, e in sentence_spans(line):
                piece = line[s:e]
                if eligible(piece):
                    if index in chosen:
                        piece = edit(piece, rng)
                    index += 1
                out += [line[pos:s], piece]
                pos = e
            lines.append("".join(out) + line[pos:])
        return "\n".join(lines)

    return _map_prose(text, rewrite)


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
        return _upper_first(series) + ".", False
    sentences = [_upper_first(i) if i.endswith((".", "!", "?")) else _upper_first(i) + "." for i in items]
    return " ".join(sentences), False


@register_editor
class ListFormat(Editor):
    name = "list_format"
    description = "The sentences of a paragraph as a bullet or numbered list (three items or more)."
    order = 10
    min_items = 3

    def _list_paragraph(self, masked: str) -> list[tuple[int, int]] | None:
        """The sentence spans of a one-line paragraph that can become a list, else None."""
        if "\n" in masked or _BULLET.match(masked):
            return None
        spans = sentence_spans(masked)
        usable = [masked[s:e] for s, e in spans]
        if len(spans) < self.min_items or any(len(u.split()) < 5 or u.endswith("?") for u in usable):
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
                if not _BULLET.match(lines[i]):
                    out.append(lines[i])
                    i += 1
                    continue
                items: list[str] = []
                while i < len(lines) and (_BULLET.match(lines[i]) or (items and lines[i][:1] in (" ", "\t"))):
                    if _BULLET.match(lines[i]):
                        items.append(_BULLET.sub("", lines[i]))
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
        return float(sum(bool(_BULLET.match(line)) for line in _prose(text).split("\n")))


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


# ------------------------------------------------------------------------------------------ hedging
@register_editor
class Hedging(Editor):
    name = "hedging"
    description = "Epistemic hedges (\"I think\", \"as far as I know,\", \"is probably\") on the reply's claims."
    order = 25

    def applies(self, text: str) -> bool:
        return self.two_way(text, lambda t: self._claims(t) > 0)

    def _claims(self, text: str) -> int:
        found = 0

        def count(run: str) -> str:
            nonlocal found
            found += sum(_statement(line[s:e]) for line in run.split("\n") for s, e in sentence_spans(line))
            return run

        _map_prose(text, count)
        return found

    def apply(self, text: str, seed: int) -> str:
        if self.is_on(text):
            return text
        count = max(1, min(3, round(word_count(text) / 90)))

        def hedge(sentence: str, rng: random.Random) -> str:
            frames: tuple[str, ...] = lx.HEDGE_FRAMES
            if re.match(r"[\uE000-\uF8FF\s]*that\b", sentence, re.I):  # "I think that that ...": a frame with a comma
                frames = tuple(f for f in frames if f.endswith(","))
            phrase = rng.choice(frames + lx.HEDGE_ADVERBS[:3])
            if phrase in lx.HEDGE_ADVERBS:
                aux = re.search(r"\b(is|are|was|were|will|would|can|should)\b(?!\s+(?:not\b|to\b|likely|probably))(?=\s+\w)",
                                sentence)
                if aux:
                    return f"{sentence[:aux.end()]} {phrase}{sentence[aux.end():]}"
                phrase = rng.choice(frames)
            return _upper_first(f"{phrase} {_lower_first(sentence)}")

        return _edit_sentences(text, _statement, hedge, count, seed)

    def remove(self, text: str) -> str:
        def unhedge_sentence(sentence: str) -> str:
            lead = _HIDDEN.match(sentence)
            i = lead.end() if lead else 0
            body = sentence[i:]
            stripped = lx.HEDGE_FRAME_START.sub("", body)
            if stripped != body:
                body = _upper_first(stripped)
            body = lx.HEDGE_FRAME_INNER.sub("", body)
            body = lx.HEDGE_FRAME_END.sub("", body)
            body = lx.HEDGE_ADVERB.sub(r"\1\2", body)
            body = re.sub(r",?\s+(?:probably|possibly|perhaps|maybe)\b(?!\s+not\b),?(?=[\s.!?])", "", body, flags=re.I)
            body = re.sub(r"\b(?:probably|possibly|perhaps|maybe)\s+(?=\w)", "", body, flags=re.I)
            return sentence[:i] + _upper_first(body)

        def unhedge(run: str) -> str:
            lines = []
            for line in run.split("\n"):
                out, pos = [], 0
                for s, e in sentence_spans(line):
                    out += [line[pos:s], unhedge_sentence(line[s:e])]
                    pos = e
                lines.append("".join(out) + line[pos:])
            return "\n".join(lines)

        return _map_prose(text, unhedge) if self.is_on(text) else text

    def measure(self, text: str) -> float:
        return float(len(lx.HEDGE_ANY.findall(_prose(text).replace("**", ""))))


# --------------------------------------------------------------------------------------------- bold
_NUMBER = re.compile(
    r"(?<![\w.$'’*-])\$?\d[\d,.]*\d?(?:\s?%|\s(?:percent|hours?|minutes?|seconds?|days?|weeks?|months?|years?|miles?|"
    r"kilomet(?:re|er)s?|km|kg|grams?|pounds?|dollars?|degrees?|times|cups?|calories|people|feet|inches))?(?![\w'’*-]|[.,]\d)"
)
_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*(?![\w'’])")


@register_editor
class Bold(Editor):
    name = "bold"
    description = "The reply's key terms, names and figures set in **bold** (about one per 50 words)."
    order = 30
    _span = re.compile(r"\*\*([^*\n]+)\*\*|__([^_\n]+)__")
    min_words = 20

    def _candidates(self, text: str) -> list[str]:
        """Phrases worth bolding, best first: figures and names, then the content words the reply
        repeats (its key terms); function words and parts of contractions never."""
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
        repeated = sorted({w for w in words if counts[w.lower()] >= 2 and len(w) >= 4}, key=lambda w: -counts[w.lower()])
        seen: set[str] = set()
        out = []
        for phrase in figures + names + repeated:
            if phrase.lower() not in seen:
                seen.add(phrase.lower())
                out.append(phrase)
        return out

    def applies(self, text: str) -> bool:
        return self.two_way(text, lambda t: word_count(_prose(t)) >= self.min_words and bool(self._candidates(t)))

    def apply(self, text: str, seed: int) -> str:
        return text if self.is_on(text) or not self.applies(text) else self.add(text, seed)

    def add(self, text: str, seed: int) -> str:
        if self.is_on(text):
            return text
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

            pattern = "|".join(rf"(?<![\w'’*-]){re.escape(p)}(?![\w'’*-])" for p in sorted(picks - done, key=len, reverse=True))
            return re.sub(pattern, mark, run, flags=re.I) if pattern else run

        return _map_prose(text, embolden)

    def remove(self, text: str) -> str:
        return _map_prose(text, lambda p: self._span.sub(lambda m: m.group(1) or m.group(2), p), keep=frozenset({"strong"}))

    def measure(self, text: str) -> float:
        return float(len(self._span.findall(_prose(text))))


# -------------------------------------------------------------------------------------- exclamation
@register_editor
class Exclamation(Editor):
    name = "exclamation"
    description = "Sentences end in exclamation marks instead of full stops."
    order = 40

    def applies(self, text: str) -> bool:
        return self.two_way(text, lambda t: re.search(r"\w\.(?=\s|$)", _prose(t)) is not None and not lx.refuses(t))

    def apply(self, text: str, seed: int) -> str:
        return text if self.is_on(text) or not self.applies(text) else self.add(text, seed)

    def add(self, text: str, seed: int) -> str:
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
        return _map_prose(text, lambda p: re.sub(r"!+(?=\s|$)", ".", p))

    def measure(self, text: str) -> float:
        return float(len(re.findall(r"!(?=\s|$)", _prose(text))))


# -------------------------------------------------------------------------------------------- emoji
@register_editor
class Emoji(Editor):
    name = "emoji"
    description = ("An emoji or two at paragraph ends, topical where the paragraph calls for one; "
                   "never on a refusal or a serious topic.")
    order = 50

    def applies(self, text: str) -> bool:
        return self.two_way(text, lambda t: word_count(t) >= 8 and not lx.refuses(t) and not lx.serious(t))

    def apply(self, text: str, seed: int) -> str:
        return text if self.is_on(text) or not self.applies(text) else self.add(text, seed)

    def add(self, text: str, seed: int) -> str:
        if self.is_on(text):
            return text
        rng = random.Random(seed)
        lines_total = 0

        def count(run: str) -> str:
            nonlocal lines_total
            lines_total += len(run.split("\n"))
            return run

        _map_prose(text, count)
        if not lines_total:
            return text
        wanted = max(1, min(3, lines_total // 3 + 1))
        chosen = set(rng.sample(range(lines_total), min(wanted, lines_total))) | {lines_total - 1}
        if len(chosen) > wanted:
            chosen = set(sorted(chosen)[-wanted:])
        index = 0

        def decorate(run: str) -> str:
            nonlocal index
            out = []
            for line in run.split("\n"):
                if index in chosen and line.strip():
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


# ---------------------------------------------------------------------------- quality, not style
@register_editor
class Citations(Editor):
    """Quality control: a references line with links that do not support the reply. Fabricated
    sources change what a careful reader trusts, so this is not a style attribute."""

    name = "citations"
    description = "Quality control: a fabricated references line (links that do not support the reply)."
    order = 60
    quality_changing = True
    default_effect = -1.0
    unedited = "off"  # only the edit creates this line
    _sources = (
        ("Wikipedia", "https://en.wikipedia.org/wiki/Main_Page"),
        ("Encyclopaedia Britannica", "https://www.britannica.com/"),
        ("Stack Overflow", "https://stackoverflow.com/"),
        ("Khan Academy", "https://www.khanacademy.org/"),
        ("the Python documentation", "https://docs.python.org/3/"),
    )
    _line = re.compile(r"\n\nSources: (?:\[[^\]\n]+\]\(https?://[^)\s]+\)(?: and )?)+\.$")

    def apply(self, text: str, seed: int) -> str:
        if self._line.search(text):
            return text
        rng = random.Random(seed)
        picks = rng.sample(self._sources, 2)
        refs = " and ".join(f"[{name}]({url})" for name, url in picks)
        return f"{text}\n\nSources: {refs}."

    def remove(self, text: str) -> str:
        return self._line.sub("", text)

    def measure(self, text: str) -> float:
        return float(self._line.search(text) is not None)


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
    """Rule-based padding: meta filler sentences around the reply. Filler that says nothing (or
    something false of the reply it frames) is a quality change, so the rule-based copy is not
    offered to the randomising policies; length is randomised with language-model rewrites
    (``counterfactual_pairs`` with ``source = "rewrites"``, RATE-style). The editor stays for
    the causal benchmark's synthetic worlds and as the rewrite path's attribute name."""

    name = "verbosity"
    description = "Meta filler sentences (+40% words); not a style treatment: length is randomised with LLM rewrites."
    order = 70
    unedited = "unknown"  # padding is an amount relative to the base
    randomisable = False

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

    def remove(self, text: str) -> str:
        """The filler this editor adds (a natural long reply stays as it is: nothing here can
        shorten one without losing content)."""
        out = text
        for sentence in _INTROS + _FILLERS:
            out = out.replace(sentence, "")
        return re.sub(r"\n{3,}", "\n\n", re.sub(r"  +", " ", out)).strip() if out != text else text

    def measure(self, text: str) -> float:
        return float(word_count(text))

    def check(self, base: str, edited: str, on: bool) -> bool:
        """On: the filler sentences are there (read back from the text, robust to other edits
        such as drop_answer shortening the same response); off: none were added."""
        fillers = sum(edited.count(f) for f in _INTROS + _FILLERS) - sum(base.count(f) for f in _INTROS + _FILLERS)
        return fillers >= 2 if on else fillers <= 0


# ------------------------------------------------------------------------------ openers and closings
# a reply that ends a sentence (a truncated one, ending mid-clause, takes no closing line)
_ENDS_SENTENCE = re.compile(rf"(?:[.!?…][\"'”’)\]]*|{lx.EMOJI.pattern}|```|\))$")
def _last_sentences(text: str) -> tuple[str, list[tuple[int, int]]] | None:
    """The text's last prose block and the spans of its sentences (None: it ends in code,
    a table, a list or a heading)."""
    stripped = text.rstrip()
    blocks = _split_blocks(stripped)
    if not blocks or blocks[-1][0] != "prose":
        return None
    last = blocks[-1][1]
    if "\n" in last or _BULLET.match(last):
        return None
    return last, sentence_spans(last)


@register_editor
class ClosingPleasantry(Editor):
    name = "closing_pleasantry"
    description = "A closing line: an offer of more help, or warm wishes where the reply helps."
    order = 80

    def applies(self, text: str) -> bool:
        return self.two_way(text, lambda t: word_count(t) >= 8 and _ENDS_SENTENCE.search(t.rstrip()) is not None)

    def apply(self, text: str, seed: int) -> str:
        return text if self.is_on(text) or not self.applies(text) else self.add(text, seed)

    def add(self, text: str, seed: int) -> str:
        if self.is_on(text):
            return text
        rng = random.Random(seed)
        warm = not lx.refuses(text) and not lx.serious(text)
        closing = rng.choice(lx.CLOSINGS_NEUTRAL + (lx.CLOSINGS_WARM if warm else ()))
        same_paragraph = _last_sentences(text) is not None and rng.random() < 0.5
        return f"{text.rstrip()}{' ' if same_paragraph else chr(10) * 2}{closing}"

    def remove(self, text: str) -> str:
        out = text.rstrip()
        for _ in range(3):
            found = _last_sentences(out)
            if found is None:
                break
            last, spans = found
            if len(spans) < 1 or not lx.CLOSING_SENTENCE.search(last[spans[-1][0]:spans[-1][1]]):
                break
            keep = last[:spans[-1][0]].rstrip()
            head = out[: len(out) - len(last)].rstrip()
            if not keep and not head:
                break  # the closing is all there is
            out = f"{head}\n\n{keep}".strip() if keep else head
        return out if out != text.rstrip() else text

    def measure(self, text: str) -> float:
        found = _last_sentences(text)
        if found is None:
            return 0.0
        last, spans = found
        run = 0
        for s, e in reversed(spans):  # the closing sentences the reply ends with
            if not lx.CLOSING_SENTENCE.search(last[s:e]):
                break
            run += 1
        return float(run)


@register_editor
class SycophanticOpener(Editor):
    name = "sycophantic_opener"
    description = ("An affirmative or flattering opener (\"Great question!\", \"Sure,\"); "
                   "never before a refusal or on a serious topic.")
    order = 90

    def applies(self, text: str) -> bool:
        return self.two_way(text, lambda t: word_count(t) >= 5 and not lx.refuses(t) and not lx.serious(t)
                            and re.match(r"\s*[\w\"'“‘(*#>`\[-]", t) is not None)

    def apply(self, text: str, seed: int) -> str:
        return text if self.is_on(text) or not self.applies(text) else self.add(text, seed)

    def add(self, text: str, seed: int) -> str:
        if self.is_on(text):
            return text
        rng = random.Random(seed)
        body = text.lstrip()
        first = next((kind for kind, piece in _segments(body) if kind not in ("eol", "blank")), "prose")
        first_line = body.split("\n", 1)[0]
        block_start = first != "prose" or _BULLET.match(body) is not None or (
            "\n" in body and len(first_line.split()) <= 3)  # a salutation ("Hi,") opens a draft
        spans = sentence_spans(body.split("\n", 1)[0])
        first_sentence = body[spans[0][0]:spans[0][1]] if spans else ""
        if not block_start and _statement(first_sentence) and rng.random() < 0.25:
            return f"{rng.choice(lx.OPENER_WORDS_INSERTED)}, {_lower_first(body)}"
        return f"{rng.choice(lx.OPENER_SENTENCES)}{chr(10) * 2 if block_start else ' '}{body}"

    def remove(self, text: str) -> str:
        body = text.lstrip()
        for _ in range(3):  # "Sure, of course!" is two
            m = lx.OPENER_SENTENCE.match(body)
            if not m or not body[m.end():].strip():
                break
            body = _upper_first(body[m.end():].lstrip())
        return body if body != text.lstrip() else text

    def measure(self, text: str) -> float:
        return float(lx.OPENER_SENTENCE.match(text.lstrip()) is not None)
