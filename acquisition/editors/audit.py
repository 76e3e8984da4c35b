"""The editor audit: is each randomised attribute the attribute it names, on *this* pool?

Run it before a study (``deconfound editors audit --data FILE``, or the Researcher page). For
every editor, on every response of the pool, it switches the attribute away from the natural
state (adds it where the response lacks it, removes it where the response has it) and reports:

- ``applies``: share of responses where the attribute can be switched (``Editor.applies``);
- ``changed``: share of those where the edit changed the text; ``check_pass``: where the
  manipulation check read back the intended state;
- ``top_share``: the share of adding edits that carry the most frequent inserted string, and
  ``distinct_per_100``: distinct inserted strings per 100 adding edits (template reuse, over
  five seeded draws per response; an editor that inserts only markup or the reply's own words
  has no inserted string);
- ``artefacts``: edits that split a word or contraction with markup, put a capital letter
  after an inserted comma, double punctuation, or change code, a URL or HTML;
- ``meaning_cosine`` (mean and 5th percentile): embedding cosine between the original and the
  edited text, each with the attribute's own markup stripped (needs ``embed``);
- ``detect_auc``: cross-validated AUC of a logistic regression on character n-grams that tells
  edited texts from natural texts that carry the same attribute. Content is matched: each
  natural text with the attribute is set against itself with the attribute removed and added
  back by the editor, so the classifier can only use how the attribute is written, not what
  the responses are about (needs ``MIN_NATURAL`` such pairs; scikit-learn). 0.5 means the
  editor's phrasings cannot be told from people's.

The targets (``TARGETS``) are the ones a style attribute must meet to be randomised in a study.
"""

from __future__ import annotations

import difflib
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from acquisition.editors.editor import EDITORS, MASKS, Editor, edit_seed
from acquisition.editors.lexicon import EMOJI

MIN_NATURAL = 20
TARGETS = {"top_share": 0.05, "artefacts": 0, "meaning_cosine": 0.95, "detect_auc": 0.65}
_MARKUP = re.compile(r"\*\*|__|^#{1,6}\s+|^\s*(?:[-*+]|\d{1,9}[.)])\s+", re.M)
_PROTECTED = re.compile("|".join(f"(?:{MASKS[k]})" for k in ("code", "html", "link", "url")), re.M)


@dataclass
class EditorAudit:
    """One editor's row of the audit (NaN where a figure cannot be computed)."""

    editor: str
    texts: int
    applies: float
    added: int
    removed: int
    changed: float
    check_pass: float
    top_share: float
    top_string: str
    distinct_per_100: float
    artefacts: int
    artefact_examples: list[str]
    meaning_cosine: float
    meaning_cosine_p5: float
    natural: int
    detect_auc: float

    def passes(self) -> bool:
        """Whether the editor meets every target it can be measured on."""
        ok = self.artefacts <= TARGETS["artefacts"]
        ok &= math.isnan(self.top_share) or self.top_share < TARGETS["top_share"]
        ok &= math.isnan(self.meaning_cosine) or self.meaning_cosine >= TARGETS["meaning_cosine"]
        ok &= math.isnan(self.detect_auc) or self.detect_auc <= TARGETS["detect_auc"]
        return bool(ok)

    def as_row(self) -> dict[str, object]:
        row = asdict(self)
        row["passes"] = self.passes()
        return row


def strip_markup(text: str) -> str:
    """The text without Markdown emphasis, heading and list markers, or emoji."""
    return re.sub(r"[ \t]+", " ", EMOJI.sub("", _MARKUP.sub("", text))).strip()


def inserted_text(before: str, after: str) -> str:
    """What an edit added, as one normalised string (markup, digits and spacing dropped):
    the words of every inserted or replacing run of tokens, joined; '' when only markup."""
    def plain(tokens: list[str]) -> str:
        joined = re.sub(r"\*\*|__|#+|(?<!\w)[-*+](?!\w)|^\d+[.)]$", " ", " ".join(tokens))
        return re.sub(r"\s+", " ", re.sub(r"[.,;:!?]+(?=\s|$)", "", joined)).strip().lower()

    a, b = re.findall(r"\S+", before), re.findall(r"\S+", after)
    pieces = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op in ("insert", "replace") and plain(b[j1:j2]) != plain(a[i1:i2]):
            pieces.append(plain(b[j1:j2]))
    return " ".join(p for p in pieces if p)


_ARTEFACTS = {
    "split word": re.compile(r"\w(?:\*\*|__)\w|\w['’](?:\*\*|__)|(?:\*\*|__)['’]\w|\d(?:\*\*|__)[.,]\d|\d[.,](?:\*\*|__)\d"),
    "capital after an inserted comma": re.compile(r",\s+(?!I\b|I['’])[A-Z][a-z]"),
    "doubled punctuation": re.compile(r"[,;:]\s*[.,;:!?]|[.!?]\s*[,;:]|(?<!\.)\.\.(?!\.)|!\s*\.|\?\s*\."),
}


def artefacts(before: str, after: str) -> list[str]:
    """The kinds of artefact ``after`` has more of than ``before`` (the edit made them)."""
    found = [name for name, pattern in _ARTEFACTS.items() if len(pattern.findall(after)) > len(pattern.findall(before))]
    spans = Counter(m.group(0) for m in _PROTECTED.finditer(before))
    if any(after.count(span) < n for span, n in spans.items()):
        found.append("touched code, a URL or HTML")
    return found


def _auc(pairs: Sequence[tuple[str, str]], seed: int) -> float:
    """5-fold cross-validated AUC of a logistic regression on character 2-4-grams that tells
    the edited text from the natural one in each ``(natural, edited)`` pair; both texts of a
    pair stay in one fold, so the classifier cannot learn a response's content in one fold and
    meet its twin in another."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    pairs = random.Random(seed).sample(list(pairs), min(len(pairs), 2000))
    x = [t for pair in pairs for t in pair]
    y = np.array([0, 1] * len(pairs))
    groups = np.repeat(np.arange(len(pairs)), 2)
    model = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True),
                          LogisticRegression(max_iter=2000, C=1.0))
    scores = cross_val_predict(model, x, y, groups=groups, cv=GroupKFold(n_splits=min(5, len(pairs))),
                               method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores))


def audit_editor(editor: Editor, texts: Sequence[str], embed: Callable[[list[str]], np.ndarray] | None = None,
                 seed: int = 0, draws: int = 5, prompts: Sequence[str | None] | None = None) -> EditorAudit:
    """The audit of one editor over ``texts`` (see the module docstring). Template reuse is
    read over ``draws`` seeded edits of each response that lacks the attribute, so it measures
    the editor's phrasings, not the luck of one draw on a small pool. ``prompts``: the request
    each text answers, where known (``Editor.fits``: no cheer on an answer to a harmful one)."""
    asked = list(prompts) if prompts is not None else [None] * len(texts)
    pairs = [(t, p) for t, p in zip(texts, asked) if editor.fits(t, p)]
    applicable = [t for t, _ in pairs]
    added, removed, edited_on, originals, edits, checks, inserted = 0, 0, [], [], [], [], []
    problems: list[str] = []
    count = 0
    for i, (text, prompt) in enumerate(pairs):
        natural_on = editor.is_on(text)
        after = editor.remove(text) if natural_on else editor.add(text, edit_seed(i + seed, editor.name), prompt)
        checks.append(editor.check(text, after, on=not natural_on))
        originals.append(text)
        edits.append(after)
        if natural_on:
            removed += 1
        else:
            added += 1
            edited_on.append(after)
            for k in range(draws):
                again = after if k == 0 else editor.add(text, edit_seed(i + seed + 7919 * k, editor.name), prompt)
                if again != text:
                    inserted.append(inserted_text(text, again))
        kinds = artefacts(text, after)
        if kinds:
            count += 1
            if len(problems) < 5:
                problems.append(f"{', '.join(kinds)}: {after[:160]!r}")
    strings = Counter(s for s in inserted if s)
    top, top_n = strings.most_common(1)[0] if strings else ("", 0)
    with_text = len(inserted) if strings else 0  # the adding edits that changed the text
    cosines = np.array([])
    if embed is not None and originals:
        a = embed([strip_markup(t) for t in originals])
        b = embed([strip_markup(t) for t in edits])
        cosines = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    # natural texts with the attribute against the same texts with it taken away and put back by
    # the editor: the content is the same, only the attribute's realisation differs
    natural = [(t, p) for t, p in pairs if editor.readable_alone and editor.is_on(t)]
    twins = [(t, editor.add(editor.remove(t), edit_seed(k + seed, editor.name), p)) for k, (t, p) in enumerate(natural)]
    twins = [(t, e) for t, e in twins if e != t and editor.is_on(e)]
    auc = _auc(twins, seed) if len(twins) >= MIN_NATURAL else math.nan
    n = len(applicable)
    return EditorAudit(
        editor=editor.name, texts=len(texts), applies=n / len(texts) if texts else math.nan,
        added=added, removed=removed,
        changed=float(np.mean([e != o for e, o in zip(edits, originals)])) if n else math.nan,
        check_pass=float(np.mean(checks)) if n else math.nan,
        top_share=top_n / with_text if with_text else math.nan, top_string=top,
        distinct_per_100=100 * len(strings) / with_text if with_text else math.nan,
        artefacts=count, artefact_examples=problems,
        meaning_cosine=float(cosines.mean()) if len(cosines) else math.nan,
        meaning_cosine_p5=float(np.percentile(cosines, 5)) if len(cosines) else math.nan,
        natural=len(natural), detect_auc=auc,
    )


def audit_editors(texts: Sequence[str], names: Sequence[str] | None = None,
                  embed: Callable[[list[str]], np.ndarray] | None = None, seed: int = 0,
                  draws: int = 5, prompts: Sequence[str | None] | None = None) -> list[EditorAudit]:
    """The audit of every style editor (or of ``names``) over ``texts``; quality controls and
    editors not offered to the randomising policies are left out unless named."""
    if names is None:
        names = sorted(n for n, e in EDITORS.items() if not e.quality_changing and e.randomisable)
    return [audit_editor(EDITORS[n], texts, embed, seed, draws, prompts) for n in names]


def format_audit(rows: Sequence[EditorAudit]) -> str:
    """The audit as a Markdown table (the one ``docs/policies.md`` prints)."""
    def pct(x: float) -> str:
        return "—" if math.isnan(x) else f"{100 * x:.0f}%"

    def num(x: float, digits: int = 2) -> str:
        return "—" if math.isnan(x) else f"{x:.{digits}f}"

    lines = ["| editor | applies | added / removed | changed | check | top inserted string | distinct /100 "
             "| artefacts | meaning cos (p5) | natural | detect AUC | passes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        top = f"{pct(r.top_share)} `{r.top_string[:30]}`" if r.top_string else "— (no inserted text)"
        lines.append(f"| {r.editor} | {pct(r.applies)} | {r.added} / {r.removed} | {pct(r.changed)} | {pct(r.check_pass)} "
                     f"| {top} | {num(r.distinct_per_100, 0)} | {r.artefacts} "
                     f"| {num(r.meaning_cosine, 3)} ({num(r.meaning_cosine_p5, 3)}) | {r.natural} "
                     f"| {num(r.detect_auc)} | {'yes' if r.passes() else 'no'} |")
    return "\n".join(lines)
