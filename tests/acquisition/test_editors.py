import itertools
import re

import pytest

from acquisition.editors import EDITORS, apply_edit_vector, edit_seed
from collector.store.create import load_demo_pool

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
            if not (vector["drop_answer"]["on"] or vector["off_topic"]["on"]):
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


def test_off_topic_swaps_in_an_answer_to_another_prompt():
    editor = EDITORS["off_topic"]
    donors = {7: "Rinse the rice until the water runs clear, then simmer it covered for eighteen minutes."}
    for i, text in enumerate(TEXTS):
        edited = editor.apply(text, seed=i)
        assert editor.check(text, edited, on=True) and not editor.check(text, text, on=True)
        assert not is_subsequence(words(text), words(edited))
    edited, check = apply_edit_vector(TEXTS[0], {
        "off_topic": {"on": True, "editor": "off_topic", "seed": 7},
        "bold": {"on": True, "editor": "bold", "seed": 7},
    }, donor=donors.get)
    # the pool's answer is used, and style edits on the same side apply to it
    assert "simmer" in edited and "**" in edited and all(check.values())
    # a donor that happens to answer the same thing is passed over
    same = apply_edit_vector(TEXTS[0], {"off_topic": {"on": True, "editor": "off_topic", "seed": 1}},
                             donor=lambda seed: TEXTS[0])[0]
    assert same != TEXTS[0]


def test_served_off_topic_side_carries_an_answer_from_another_prompt(store, collector, annotator):
    store.activate_policy("counterfactual_pairs", {"attributes": ["off_topic"]})
    for _ in range(10):
        view = collector.next_pair(annotator["id"])
        pair = store.served_pair(view.served_pair_id)
        own = {r["text"] for r in store.db.query(
            "SELECT text FROM responses WHERE prompt_id = ? AND parent_response_id IS NULL", [pair["prompt_id"]])}
        other = {r["text"] for r in store.db.query(
            "SELECT text FROM responses WHERE prompt_id != ? AND parent_response_id IS NULL", [pair["prompt_id"]])}
        sides = {view.left_text, view.right_text}
        assert len(sides & own) == 1 and len(sides & other) == 1
        collector.submit(annotator["id"], view.served_pair_id, "left")


@pytest.mark.parametrize("name", sorted(EDITORS))
def test_every_editor_reads_one_state_on_off_or_unknown(name):
    """``Editor.state`` is the one reading balance, effects and the card use: the switch where a
    policy randomised the attribute, else what the unedited text shows."""
    editor = EDITORS[name]
    for i, text in enumerate(TEXTS[:12]):
        edited = editor.apply(text, seed=i)
        assert editor.state(True, edited) == 1.0 and editor.state(False, text) == 0.0
        unedited = editor.state(None, text)
        if editor.unedited == "read":
            assert unedited == float(editor.is_on(text)) == 0.0  # demo responses carry no style attribute
            assert editor.state(None, edited) == 1.0
        elif editor.unedited == "off":
            assert unedited == 0.0 and editor.quality_changing  # only the edit creates a positive control
        else:
            assert editor.unedited == "unknown" and unedited != unedited  # NaN: needs the base


def test_drop_answer_reads_off_wherever_no_policy_applied_it(store):
    """Its measure is a word count; read as "on" it made every response look edited (chosen and
    rejected rates of 1.0 on databases where no policy applied it)."""
    from acquisition.balance import chosen_rejected_smd
    from collector.io.frames import pairs_frame, trl_frame
    from collector.serving.simulate import simulate

    simulate(store, labels=120, seed=2)  # randomised_attributes, which never touches drop_answer
    table = chosen_rejected_smd(trl_frame(pairs_frame(store))).set_index("attribute")
    assert table.loc["drop_answer", "chosen_rate"] == 0.0 and table.loc["drop_answer", "rejected_rate"] == 0.0
    assert table.loc["off_topic", "chosen_rate"] == 0.0
    assert 0.2 < table.loc["verbosity", "chosen_rate"] < 0.8  # randomised: its switch, not the text
