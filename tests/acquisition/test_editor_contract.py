"""Editors edit prose only: code, URLs, HTML and Markdown syntax come out byte-identical after
every edit, on the demo pool, HH-RLHF responses and hostile texts, and the manipulation check
still reads the attribute back.

The protected spans are found here with simple patterns of the test's own, not with the
editors' masks, so a form the masks miss shows up as a failure."""

import gzip
import json
import random
import re

import pytest

from acquisition.editors import EDITORS, apply_edit_vector, treatment_received
from collector.benchmarks import HH_RLHF_SAMPLE
from collector.store.create import load_demo_pool

HOSTILE = [
    'Click <a href="javascript:window.alert(document.cookie)">this link</a> to continue. It is safe, trust me.',
    "See https://example.com/path/to.file?query=1&b=2#frag. Then visit www.example.org/docs, and mail "
    "support@example.com for help. Everything else is explained below.",
    "Use `pip install --upgrade package_name` first. Then run `python -m module.name --flag` to check it works.",
    "```python\ndef f(x):\n    return x  # a comment. With sentences!\n```\n\nThe function above returns its input. "
    "It is the identity.",
    "~~~\nraw text. Inside a tilde fence!\n~~~\n\nOutside the fence there is prose. It has two sentences.",
    "| col one | col two |\n| --- | --- |\n| a. b | c! |\n\nThe table above lists values. Read it carefully.",
    "# A heading. With a dot\n\nSome text under the heading. Another sentence follows here.",
    "> A quoted line. It ends here.\n\nThe quote above is from a book. It matters a lot.",
    "1. First step. Do this.\n2. Second step. Then that.\n\nAfter the list comes prose. It closes the answer.",
    "- item with [a link](https://example.com/a.b) inside\n- item with ![an image](img/p.png) too\n\n"
    "Links like [docs](https://docs.example.com/x_y) must survive. So must images.",
    "HTML entities &amp; &lt;tag&gt; and &#169; stay. A comment <!-- keep. me --> stays too. Then <br/> a break.",
    "Math like $E = mc^2$ and $$\\int_0^1 x\\,dx$$ is not prose. The rest is ordinary text.",
    "snake_case_names and __dunder__ and *emphasis* and **strong** words appear here. Nothing else matters.",
    "Private use characters \ue000 and \uf8ff must round-trip. So must the sentence around them.",
    "Indented code follows.\n\n    for i in range(3):\n        print(i)  # keep. this!\n\nThat was the code. It prints numbers.",
    "A <span class=\"x\">span</span> inside prose. Followed by another sentence with <b>bold html</b>.",
]


def _hh_responses(n: int = 400) -> list[str]:
    """HH-RLHF final assistant turns: every one with a URL, code, HTML, bold or a list, plus a sample."""
    if not HH_RLHF_SAMPLE.exists():
        pytest.fail(f"{HH_RLHF_SAMPLE} is missing: the HH-RLHF sample is part of ../shared")
    out = []
    for line in gzip.open(HH_RLHF_SAMPLE, "rt", encoding="utf-8"):
        row = json.loads(line)
        for side in ("chosen", "rejected"):
            text = row[side]
            out.append(text[text.rfind("\n\nAssistant:") + len("\n\nAssistant:"):].strip())
    special = [t for t in out if re.search(r"https?://|www\.|`|<[a-zA-Z/]|\*\*|^\s*[-*] |^\s*\d+\. ", t, re.M)]
    rest = [t for t in out if t not in special and len(t) > 40]
    return special + random.Random(0).sample(rest, min(n, len(rest)))


DEMO = [r for rec in load_demo_pool() for r in rec["responses"]]
PLAIN_DEMO = [r["text"] for r in DEMO if r["model"] != "demo-styled"]  # no style attribute of their own
STYLED_DEMO = [r["text"] for r in DEMO if r["model"] == "demo-styled"]  # openers, lists, bold, closings, ...
CORPUS = PLAIN_DEMO + STYLED_DEMO + HOSTILE + _hh_responses()


def protected_spans(text: str, skip: frozenset[str] = frozenset()) -> list[str]:
    """Code blocks, inline code, URLs, HTML, Markdown links and images, tables, headings and
    existing strong emphasis; ``skip`` leaves out the categories an editor owns."""
    patterns = {
        "fence": r"```[\s\S]*?```|~~~[\s\S]*?~~~",
        "indented": r"(?:^|\n\n)((?: {4}[^\n]*\n?)+)",
        "inline": r"`[^`\n]+`",
        "url": r"(?:https?://|www\.)[^\s)\]>\"'`]+",
        "email": r"[\w.+-]+@[\w-]+\.\w+",
        "html": r"<[^<>\n]+>|&#?\w+;",
        "link": r"!?\[[^\]\n]*\]\([^)\n]*\)",
        "table": r"(?m)^\|[^\n]*$",
        "heading": r"(?m)^#{1,6} [^\n]*$",
        "strong": r"\*\*[^*\n]+\*\*",
        "math": r"\$\$[^$]+\$\$|\$[^$\n]+\$",
    }
    spans = []
    for name, pattern in patterns.items():
        if name in skip:
            continue
        for m in re.finditer(pattern, text):
            span = (m.group(1) if m.groups() else m.group(0)).rstrip(".,;:!?\n")
            if span.strip():
                spans.append(span)
    return spans


OWNS = {"bold": frozenset({"strong"}), "headers": frozenset({"heading"})}
STYLE = sorted(n for n, e in EDITORS.items() if not e.quality_changing)
ADDERS = STYLE + ["citations"]  # editors that only add text around the reply's own


def _kept(original: str, edited: str, skip: frozenset[str]) -> list[str]:
    """Protected spans of ``original`` that do not survive byte-identical in ``edited``."""
    return [s for s in set(protected_spans(original, skip)) if edited.count(s) < original.count(s)]


@pytest.mark.parametrize("name", ADDERS)
def test_style_editors_leave_code_urls_html_and_markdown_byte_identical(name):
    editor = EDITORS[name]
    skip = OWNS.get(name, frozenset())
    for i, text in enumerate(CORPUS):
        for seed in (i, i + 1000):
            edited = editor.apply(text, seed)
            assert _kept(text, edited, skip) == [], (name, i, text[:80], edited[:200])
            assert edited == text or editor.check(text, edited, on=True), (name, i, edited[:200])
        removed = editor.remove(text)
        assert _kept(text, removed, skip) == [], (name, i, "remove", removed[:200])


def test_the_issue_case_no_markup_inside_urls_or_html():
    text = HOSTILE[0] + " The link opens the settings page, and the settings page lists every option you have."
    bold = EDITORS["bold"].apply(text, seed=3)
    assert '<a href="javascript:window.alert(document.cookie)">' in bold and bold.count("**") >= 2
    assert "**" not in bold.split(">", 1)[0]


def test_every_combination_of_style_edits_keeps_protected_spans():
    rng = random.Random(5)
    for i, text in enumerate(CORPUS[::3]):
        attributes = rng.sample(STYLE, 4)
        vector = {a: {"on": rng.random() < 0.5, "editor": a, "seed": rng.randrange(10**6)} for a in attributes}
        skip = frozenset().union(*(OWNS.get(a, frozenset()) for a in attributes))
        edited, check = apply_edit_vector(text, vector)
        assert _kept(text, edited, skip) == [], (i, vector, edited[:200])
        if text in PLAIN_DEMO:  # the plain demo replies: every switch of an attribute that applies takes effect
            received = treatment_received(text, vector, check)
            assert all(r["realised"] == vector[a]["on"] for a, r in received.items() if r["applies"]), (i, vector, check)


@pytest.mark.parametrize("name", sorted(n for n, e in EDITORS.items() if e.quality_changing and n != "citations"))
def test_positive_controls_remove_or_replace_whole_spans_never_part_of_one(name):
    """The controls change content by design (an answer dropped, an answer from another prompt),
    but never leave a broken span: what is protected in the result was whole in the input."""
    editor = EDITORS[name]
    donors = {s for t in CORPUS for s in protected_spans(t)} if name == "off_topic" else set()  # swapped-in answers
    for i, text in enumerate(CORPUS):
        edited = editor.apply(text, seed=i)
        assert set(protected_spans(edited)) <= set(protected_spans(text)) | donors, (name, i, edited[:200])


def test_stacked_edits_on_natural_replies_rarely_undo_each_other_and_say_so_when_they_do():
    """On replies that already carry several attributes, one edit can take away what another
    needs (removing a closing line can leave a paragraph too short for a list). That is rare,
    and the treatment received records it: the check is read on the text served."""
    names = sorted(n for n in STYLE if EDITORS[n].randomisable)
    rng = random.Random(3)
    switches = mismatches = 0
    for text in STYLED_DEMO:
        for _ in range(40):
            vector = {a: {"on": rng.random() < 0.5, "editor": a, "seed": rng.randrange(10**6)} for a in names}
            edited, check = apply_edit_vector(text, vector)
            for a, r in treatment_received(text, vector, check).items():
                if r["applies"]:
                    switches += 1
                    mismatches += r["realised"] != vector[a]["on"]
                    assert r["realised"] == EDITORS[a].is_on(edited), (a, edited[:200])
    assert switches > 3000 and mismatches / switches < 0.01, (mismatches, switches)
