"""Edits that are not style attributes. Positive controls change real quality on purpose
(``drop_answer``, ``off_topic``, the fabricated ``citations``), so annotators and the effect
estimates should notice them; ``verbosity``'s rule-based filler is kept for the causal
benchmark's synthetic worlds and as the LLM rewrite path's attribute, never offered to a study
as a rule-based treatment."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from acquisition.editors.editor import Editor, _sentences, _split_blocks, mask, register_editor, unmask, word_count


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
    unedited = "off"  # a response no policy edited still has its answer

    def _answer(self, text: str) -> str | None:
        """The part that answers: the first code block, else the first sentence of the first
        prose paragraph (found with protected spans masked, so it never ends inside one)."""
        blocks = _split_blocks(text)
        code = [b for k, b in blocks if k == "code"]
        if code:
            return code[0]
        # the benchmark's planted padding (``verbosity``) frames the reply; the answer is inside it
        prose = [b for k, b in blocks if k == "prose" and not _is_padding(b)]
        if not prose or sum(len(_sentences(mask(b)[0])) for b in prose) < 2:
            return None
        masked, spans = mask(prose[0])
        end = re.search(r"(?<=[.!?])\s+", masked)
        return unmask(masked[:end.start()], spans) if end else prose[0]

    def applies(self, text: str) -> bool:
        return self._answer(text) is not None

    def apply(self, text: str, seed: int) -> str:
        answer = self._answer(text)
        if answer is None or answer not in text:
            return text
        i = text.index(answer)
        before, after = text[:i], text[i + len(answer):]
        if not before.strip() or before.endswith("\n"):  # the answer opened its line
            after = after.lstrip(" \t")
        if before.strip() and after.strip() and (before.endswith("\n") or after.startswith("\n")):
            return (before.rstrip("\n") + "\n\n" + after.lstrip("\n")).strip()  # one blank line where it was
        return (before + after).strip()

    def measure(self, text: str) -> float:
        return float(word_count(text))

    def check(self, base: str, edited: str, on: bool) -> bool:
        answer = self._answer(base)
        if answer is None:
            return not on
        present = _contains_run(_tokens(edited), _tokens(answer))
        return present != on


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
    unedited = "off"  # a response no policy edited answers its own prompt
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
    "There is a fair amount to say here, and it deserves a clear and thorough answer.",
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

    def is_on(self, text: str) -> bool:
        """Padding this editor wrote: its intro or two of its filler sentences (a reply that is
        long by nature is not "on": nothing here can tell, or shorten, one)."""
        return _padding_count(text) >= 2

    def apply(self, text: str, seed: int) -> str:
        if self.is_on(text):  # already padded (the benchmark's natural pool): left as it is
            return text
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
        """On: the padding is there (read back from the text, robust to other edits such as
        drop_answer shortening the same response); off: none of it is left."""
        return self.is_on(edited) if on else _padding_count(edited) == 0


def _padding_count(text: str) -> int:
    """Padding sentences in ``text``, each matched without its first letter, so one that an
    opener was put in front of ("Sure, there is a fair amount ...") still counts."""
    return sum(text.count(f[1:]) for f in _INTROS + _FILLERS)


def _is_padding(block: str) -> bool:
    """A paragraph that is nothing but ``verbosity``'s intro or filler sentences."""
    rest = block
    for sentence in _INTROS + _FILLERS:
        rest = rest.replace(sentence, "")
    return rest.strip() == "" and block.strip() != ""
