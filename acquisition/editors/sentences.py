"""Sentence-level helpers the style editors share: sentence spans inside a line of prose,
which sentences are statements a hedge or a comma opener can go in front of, and editing a
seeded choice of eligible sentences (code, structure and protected spans left alone)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from acquisition.editors import lexicon as lx
from acquisition.editors.editor import _map_prose

MARKERS = frozenset({"marker"})  # list markers left visible, for the editors that read them
BULLET = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])[\"'”’)\]]*(\s+)(?=[\"'“‘(\[]?[A-Z0-9\uE000-\uF8FF])")
HIDDEN = re.compile(r"^[\uE000-\uF8FF\s]*")  # masked markers, links or code at a sentence start


def sentence_spans(line: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of one line, whitespace between them left out."""
    spans, start = [], 0
    for m in _SENTENCE_BREAK.finditer(line):
        spans.append((start, m.start(1)))  # closing quotes and brackets stay with their sentence
        start = m.end()
    if line[start:].strip():
        spans.append((start, len(line.rstrip())))
    return spans


def statement(sentence: str) -> bool:
    """A declarative sentence whose first word can be lowercased after an inserted hedge."""
    body = HIDDEN.sub("", sentence)
    return (len(body.split()) >= 4 and not body.rstrip().endswith("?") and lx.STATEMENT_START.match(body) is not None
            and not lx.refuses(body))


def lower_first(sentence: str) -> str:
    """The sentence with its first word lowercased (only called on ``statement`` sentences)."""
    lead = HIDDEN.match(sentence)
    i = lead.end() if lead else 0
    return sentence[:i] + sentence[i].lower() + sentence[i + 1:] if i < len(sentence) else sentence


def upper_first(text: str) -> str:
    lead = HIDDEN.match(text)
    i = lead.end() if lead else 0
    return text[:i] + text[i].upper() + text[i + 1:] if i < len(text) else text


def edit_sentences(text: str, eligible: Callable[[str], bool], edit: Callable[[str, random.Random], str],
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




NEGATION = re.compile(r"\b(?:not|no|never|nothing|nobody|none|cannot|without|violat\w*)\b|n['’]t\b", re.I)


def opens_agreeably(text: str) -> bool:
    """Whether the reply's first sentence is neither a question nor a negation: where a cheerful
    opener or emoji would not contradict it ("Sure! That would violate ..." does)."""
    body = text.lstrip()
    spans = sentence_spans(body.split("\n", 1)[0])
    first = body[spans[0][0]:spans[0][1]] if spans else ""
    return not first.rstrip().endswith("?") and not NEGATION.search(first)
