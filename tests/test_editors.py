import itertools
import re

import pytest

from acquisition.editors import EDITORS, apply_edit_vector, edit_seed
from collector.setup import load_demo_pool

TEXTS = [r["text"] for rec in load_demo_pool() for r in rec["responses"]]


def words(text):
    return re.findall(r"[a-z0-9]+", text.lower())


def is_subsequence(small, big):
    it = iter(big)
    return all(w in it for w in small)


@pytest.mark.parametrize("name", sorted(EDITORS))
def test_measure_reads_back_the_edit_on_every_demo_response(name):
    editor = EDITORS[name]
    for i, text in enumerate(TEXTS):
        assert editor.check(text, text, on=False), f"{name} reads as on in base text {i}"
        edited = editor.apply(text, seed=i)
        assert edited != text
        assert editor.check(text, edited, on=True), f"{name} not detected after apply on text {i}"


STYLE = sorted(n for n, e in EDITORS.items() if not e.quality_changing)


@pytest.mark.parametrize("name", STYLE)
def test_edits_keep_the_content(name):
    editor = EDITORS[name]
    for i, text in enumerate(TEXTS):
        assert is_subsequence(words(text), words(editor.apply(text, seed=i))), (name, i)


@pytest.mark.parametrize("name", sorted(EDITORS))
def test_edits_are_deterministic_under_a_seed(name):
    editor = EDITORS[name]
    text = TEXTS[0]
    assert editor.apply(text, 5) == editor.apply(text, 5)


@pytest.mark.parametrize("name", [n for n in STYLE if n != "verbosity"])
def test_remove_switches_the_attribute_off(name):
    editor = EDITORS[name]
    for i, text in enumerate(TEXTS[:20]):
        assert not editor.is_on(editor.remove(editor.apply(text, seed=i)))


def test_all_combinations_pass_the_manipulation_check():
    names = sorted(EDITORS)
    for i, text in enumerate(TEXTS[:12]):
        for bits in itertools.islice(itertools.product([False, True], repeat=len(names)), i, None, 37):
            vector = {n: {"on": b, "editor": n, "seed": edit_seed(i, n)} for n, b in zip(names, bits)}
            edited, check = apply_edit_vector(text, vector)
            assert all(check.values()), (i, bits, check)
            if not vector["drop_answer"]["on"]:
                assert is_subsequence(words(text), words(edited))


def test_quality_controls_remove_content_and_are_not_randomised_by_default():
    from acquisition.editors import DEFAULT_ATTRIBUTES

    controls = [n for n, e in EDITORS.items() if e.quality_changing]
    assert controls and not set(controls) & set(DEFAULT_ATTRIBUTES)
    for i, text in enumerate(TEXTS):
        edited = EDITORS["drop_answer"].apply(text, i)
        assert len(words(edited)) < len(words(text)) and is_subsequence(words(edited), words(text))


def test_verbosity_adds_at_least_thirty_percent_words():
    for i, text in enumerate(TEXTS):
        assert len(words(EDITORS["verbosity"].apply(text, i))) >= 1.3 * len(words(text))
