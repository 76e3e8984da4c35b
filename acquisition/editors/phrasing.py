"""The phrasing style editors: hedges, affirmative openers and closing lines.

Each detects the natural phrasings a lexicon knows (``lexicon``: "I think", "as far as I know,",
"Sure!", "Great question!", "Hope this helps!", "Let me know if ..."), removes them, and inserts
one drawn from a large pool, grammatically (a hedge goes on a statement, lowercasing its first
word only where it can be; an opener is a sentence of its own or a word and a comma). Nothing is
inserted in contradiction with the reply: no cheer before a refusal or on a serious harm topic,
only offers of more help after a refusal.
"""

from __future__ import annotations

import random
import re

from acquisition.editors import lexicon as lx
from acquisition.editors.editor import (
    Editor,
    InsertingEditor,
    _map_prose,
    _prose,
    _segments,
    _split_blocks,
    register_editor,
    word_count,
)
from acquisition.editors.sentences import (
    BULLET,
    HIDDEN,
    edit_sentences,
    lower_first,
    opens_agreeably,
    sentence_spans,
    statement,
    upper_first,
)


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
            found += sum(statement(line[s:e]) for line in run.split("\n") for s, e in sentence_spans(line))
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
            return upper_first(f"{phrase} {lower_first(sentence)}")

        return edit_sentences(text, statement, hedge, count, seed)

    def remove(self, text: str) -> str:
        def unhedge_sentence(sentence: str) -> str:
            lead = HIDDEN.match(sentence)
            i = lead.end() if lead else 0
            body = sentence[i:]
            stripped = lx.HEDGE_FRAME_START.sub("", body)
            if stripped != body:
                body = upper_first(stripped)
            body = lx.HEDGE_FRAME_INNER.sub("", body)
            body = lx.HEDGE_FRAME_END.sub("", body)
            body = lx.HEDGE_ADVERB.sub(r"\1\2", body)
            body = re.sub(r",?\s+(?:probably|possibly|perhaps|maybe)\b(?!\s+not\b),?(?=[\s.!?])", "", body, flags=re.I)
            body = re.sub(r"\b(?:probably|possibly|perhaps|maybe)\s+(?=\w)", "", body, flags=re.I)
            return sentence[:i] + upper_first(body)

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



# ------------------------------------------------------------------------------ openers and closings
_ENDS_WITH_QUESTION = re.compile(r"\?[\"'”’)\]]*(?:\s*[\U0001F000-\U0001FAFF\u2600-\u27BF]\uFE0F?)?$")
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
    if "\n" in last or BULLET.match(last):
        return None
    return last, sentence_spans(last)


@register_editor
class ClosingPleasantry(InsertingEditor):
    name = "closing_pleasantry"
    description = "A closing line: an offer of more help, or warm wishes where the reply helps."
    order = 80

    def applies(self, text: str) -> bool:
        """A reply of eight words or more that ends a sentence, and not with a question: a
        closing line after a question back to the user reads as not listening."""
        return self.two_way(text, lambda t: word_count(t) >= 8 and _ENDS_SENTENCE.search(t.rstrip()) is not None
                            and not _ENDS_WITH_QUESTION.search(t.rstrip()))

    def insert(self, text: str, seed: int, prompt: str | None = None) -> str:
        rng = random.Random(seed)
        warm = not lx.refuses(text) and not lx.serious(text) and not (prompt and lx.serious(prompt))
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
class SycophanticOpener(InsertingEditor):
    name = "sycophantic_opener"
    cheerful = True
    description = ("An affirmative or flattering opener (\"Great question!\", \"Sure,\"); "
                   "never before a refusal or on a serious topic.")
    order = 90

    def applies(self, text: str) -> bool:
        """A reply of five words or more that agrees to help: not a refusal or a serious topic,
        and its first sentence neither a question nor a negation ("Sure! That would violate ..."
        contradicts itself)."""
        def agrees(t: str) -> bool:
            return (word_count(t) >= 5 and not lx.refuses(t) and not lx.serious(t) and opens_agreeably(t)
                    and re.match(r"\s*[\w\"'“‘(*#>`\[-]", t) is not None)

        return self.two_way(text, agrees)

    def insert(self, text: str, seed: int, prompt: str | None = None) -> str:
        rng = random.Random(seed)
        body = text.lstrip()
        first = next((kind for kind, piece in _segments(body) if kind not in ("eol", "blank")), "prose")
        first_line = body.split("\n", 1)[0]
        block_start = first != "prose" or BULLET.match(body) is not None or (
            "\n" in body and len(first_line.split()) <= 3)  # a salutation ("Hi,") opens a draft
        spans = sentence_spans(body.split("\n", 1)[0])
        first_sentence = body[spans[0][0]:spans[0][1]] if spans else ""
        if not block_start and statement(first_sentence) and rng.random() < 0.25:
            return f"{rng.choice(lx.OPENER_WORDS_INSERTED)}, {lower_first(body)}"
        return f"{rng.choice(lx.OPENER_SENTENCES)}{chr(10) * 2 if block_start else ' '}{body}"

    def remove(self, text: str) -> str:
        body = text.lstrip()
        for _ in range(3):  # "Sure, of course!" is two
            m = lx.OPENER_SENTENCE.match(body)
            if not m or not body[m.end():].strip():
                break
            body = upper_first(body[m.end():].lstrip())
        return body if body != text.lstrip() else text

    def measure(self, text: str) -> float:
        return float(lx.OPENER_SENTENCE.match(text.lstrip()) is not None)
