"""The editor audit can fail: a template, an artefact and a detectable phrasing each show."""

import random
import re

import pytest

from acquisition.editors import EDITORS, Editor
from acquisition.editors.audit import artefacts, audit_editor, audit_editors, format_audit, inserted_text
from collector.cli import main
from collector.store.create import load_demo_pool

OPENERS = ["Sure!", "Of course!", "Absolutely!", "Happy to help!", "Great question!", "Certainly!", "Sure thing!",
           "Good question!", "Thanks for asking!", "Glad you asked!"]
TOPICS = ["the kettle", "the garden", "your bike", "the oven", "the router", "the printer", "your phone", "the car"]


class _Opener(Editor):
    """A toy opener editor: ``phrases`` is what it inserts."""

    name = "toy_opener"
    description = "toy"
    order = 90
    phrases = OPENERS

    def apply(self, text: str, seed: int) -> str:
        return text if self.is_on(text) else f"{random.Random(seed).choice(self.phrases)} {text}"

    def remove(self, text: str) -> str:
        for phrase in OPENERS:
            if text.startswith(phrase + " "):
                return text[len(phrase) + 1:]
        return text

    def measure(self, text: str) -> float:
        return float(any(text.startswith(p + " ") for p in OPENERS))


class _Template(_Opener):
    phrases = ["Certainly, I would be delighted to help with this."]

    def measure(self, text: str) -> float:
        return float(text.startswith(self.phrases[0]) or super().measure(text))

    def remove(self, text: str) -> str:
        return text[len(self.phrases[0]) + 1:] if text.startswith(self.phrases[0]) else super().remove(text)


def _texts(n: int = 240) -> list[str]:
    rng = random.Random(1)
    texts = []
    for i in range(n):
        topic = rng.choice(TOPICS)
        body = f"Clean {topic} once a week number {i}, and check it again after {rng.randint(2, 9)} days."
        texts.append(f"{rng.choice(OPENERS)} {body}" if i % 2 else body)  # half carry a natural opener
    return texts


def test_a_template_is_caught_and_a_natural_phrasing_is_not():
    texts = _texts()
    natural = audit_editor(_Opener(), texts)
    template = audit_editor(_Template(), texts)
    assert natural.applies == template.applies == 1.0 and natural.check_pass == 1.0
    assert natural.top_share < 0.2 and template.top_share == 1.0 and template.distinct_per_100 < 1
    assert natural.natural >= 100 and natural.detect_auc < 0.65 < 0.9 < template.detect_auc
    assert natural.artefacts == template.artefacts == 0
    assert not template.passes()


def test_artefacts_are_read_off_what_the_edit_changed():
    assert artefacts("I don't know.", "I **don**'t know.") == ["split word"]
    assert artefacts("It costs 6.1 dollars.", "It costs **6**.1 dollars.") == ["split word"]
    assert artefacts("Yes. The cat sat.", "Yes, The cat sat.") == ["capital after an inserted comma"]
    assert artefacts("Done.", "Done..") == ["doubled punctuation"]
    assert artefacts("Run `pip install x` now.", "Run `pip install` x now.") == ["touched code, a URL or HTML"]
    assert artefacts("Yes, I think so.", "Yes, I think so!") == []  # "I" after a comma is fine
    assert inserted_text("The cat sat.", "**The** cat sat!") == ""  # markup and punctuation are no text
    assert inserted_text("The cat sat.", "Sure! The cat sat.") == "sure"


def test_every_style_editor_passes_the_artefact_check_on_the_demo_pool():
    texts = [r["text"] for record in load_demo_pool() for r in record["responses"]]
    rows = audit_editors(texts, draws=2)
    assert {r.editor for r in rows} == {n for n, e in EDITORS.items() if not e.quality_changing and e.randomisable}
    for row in rows:
        assert row.artefacts == 0, (row.editor, row.artefact_examples)
        assert math_ok(row.check_pass), row.editor
    table = format_audit(rows)
    assert table.count("\n") == len(rows) + 1 and "| hedging |" in table


def math_ok(x: float) -> bool:
    return x != x or x == 1.0  # NaN where nothing applies; else every check passes


def test_the_cli_prints_the_audit_and_refuses_bad_input(capsys, tmp_path):
    assert main(["editors", "audit", "--demo", "--no-embed", "--editors", "hedging,bold", "--limit", "40"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("40 responses from the demo pool") and re.search(r"\| hedging \| \d+% \|", out)
    assert main(["editors", "audit", "--demo", "--no-embed", "--editors", "sparkle"]) == 1
    assert "--editors: unknown editor 'sparkle'" in capsys.readouterr().err
    assert main(["editors", "audit", "--data", str(tmp_path / "missing.jsonl"), "--no-embed"]) == 1
    assert "missing.jsonl" in capsys.readouterr().err
    assert main(["editors", "list"]) == 0
    listed = capsys.readouterr().out
    assert "verbosity\trewrites only" in listed and "drop_answer\tquality control" in listed


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_a_limit_must_be_positive(limit, capsys):
    assert main(["editors", "audit", "--demo", "--no-embed", "--limit", limit]) == 1
    assert "--limit" in capsys.readouterr().err
