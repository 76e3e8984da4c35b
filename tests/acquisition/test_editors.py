import gzip
import itertools
import json
import os
import re
import subprocess
import sys

import pytest

from acquisition.editors import DEFAULT_ATTRIBUTES, EDITORS, apply_edit_vector, edit_seed, lexicon, treatment_received
from collector.benchmarks import HH_RLHF_SAMPLE
from collector.store.create import load_demo_pool

DEMO = [r for rec in load_demo_pool() for r in rec["responses"]]
TEXTS = [r["text"] for r in DEMO if r["model"] != "demo-styled"]  # plain replies, no style attribute
STYLED = [r["text"] for r in DEMO if r["model"] == "demo-styled"]  # written with openers, lists, bold, ...
HH = [json.loads(line)[side].rsplit("\n\nAssistant: ", 1)[-1]
      for line in gzip.open(HH_RLHF_SAMPLE, "rt", encoding="utf-8") for side in ("chosen", "rejected")][::5]

# natural texts that carry each attribute, written the way people and assistants write them
NATURAL = {
    "list_format": ["To repot a plant:\n1. Water it the day before.\n2. Ease it out of the old pot.\n3. Set it in fresh soil.",
                    "You'll need:\n* flour\n* two eggs\n* a pinch of salt", "- Check the fuse first.\n- Then test the socket."],
    "headers": ["## Why it happens\n\nThe glass cools unevenly, so stress builds up.\n\n## What to do\n\nAnneal it slowly."],
    "hedging": ["I think the shop opens at nine, but check first.", "It's probably a loose cable. Try another one.",
                "As far as I know, the law changed in 2019.", "Maybe you could ask your landlord about it.",
                "I believe the recipe needs more salt, and it will likely need longer in the oven.",
                "I'm not sure, but the bus might stop there."],
    "bold": ["The key is **consistency**: water at the same time every day.", "Use __two cups__ of rice."],
    "exclamation": ["That sounds like a great plan! Go for it.", "Congratulations on the new job!"],
    "emoji": ["Have a great trip! ✈️", "That's wonderful news 🎉 Congratulations!", "Thanks 👍🏽 that worked."],
    "closing_pleasantry": ["Boil the eggs for nine minutes. Hope this helps!",
                           "The form is on page two.\n\nLet me know if you have any other questions.",
                           "Use a 10 mm socket. Good luck with the repair!"],
    "sycophantic_opener": ["Sure! The train leaves at six.", "Great question! Bees dance to share directions.",
                           "Of course, here is the list you asked for.", "Absolutely. You can freeze cooked rice.",
                           "I'd be happy to help with that. First, open the settings."],
}


def words(text):
    return re.findall(r"[a-z0-9]+", text.lower())


def is_subsequence(small, big):
    it = iter(big)
    return all(w in it for w in small)


@pytest.mark.parametrize("name", sorted(EDITORS))
def test_measure_reads_back_the_edit_where_the_attribute_applies(name):
    editor = EDITORS[name]
    applied = 0
    for i, text in enumerate(TEXTS):
        assert editor.check(text, text, on=False), f"{name} reads as on in base text {i}"
        edited = editor.apply(text, seed=i)
        if editor.takes_donor or editor.applies(text):
            applied += 1
            assert edited != text and editor.check(text, edited, on=True), f"{name} not detected after apply on text {i}"
        else:
            assert edited == text, f"{name} edited text {i}, where it does not apply"
    assert applied or name == "headers"  # headers need a long multi-paragraph reply; the demo has few


STYLE = sorted(n for n, e in EDITORS.items() if not e.quality_changing)
TWO_WAY = sorted(n for n in STYLE if EDITORS[n].randomisable)


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


@pytest.mark.parametrize("name", TWO_WAY)
def test_add_then_remove_returns_the_original_content(name):
    editor = EDITORS[name]
    for i, text in enumerate(TEXTS + HH[:300]):
        if not editor.applies(text) or editor.is_on(text):
            continue
        edited = editor.apply(text, seed=i)
        back = editor.remove(edited)
        assert not editor.is_on(back), (name, i, back[:200])
        assert words(back) == words(text), (name, i, back[:300])


@pytest.mark.parametrize("name", TWO_WAY)
def test_remove_takes_the_natural_attribute_away(name):
    """Remove on a natural text that has the attribute (written by people or other models, not
    by this editor) yields a text the check reads as off, keeping the rest of the content."""
    editor = EDITORS[name]
    natural = NATURAL[name] + [t for t in STYLED + HH if editor.is_on(t) and editor.applies(t)][:60]
    assert NATURAL[name]
    for text in natural:
        assert editor.is_on(text) and editor.applies(text), (name, text[:120])
        removed = editor.remove(text)
        assert not editor.is_on(removed), (name, text[:200], removed[:200])
        kept = [w for w in words(removed) if name != "list_format" or w != "and"]  # "a, b and c" from a list
        assert removed.strip() and is_subsequence(kept, words(text)), (name, removed)
        assert editor.check(text, removed, on=False)
    for text in NATURAL[name]:
        assert editor.check(text, editor.apply(text, seed=1), on=True) and editor.apply(text, seed=1) == text


def test_inserted_phrasings_are_all_read_back_and_removed():
    for phrase in lexicon.CLOSINGS_NEUTRAL + lexicon.CLOSINGS_WARM:
        text = f"Water the plants twice a week in summer. {phrase}"
        assert EDITORS["closing_pleasantry"].is_on(text), phrase
        assert EDITORS["closing_pleasantry"].remove(text) == "Water the plants twice a week in summer."
    for phrase in lexicon.OPENER_SENTENCES:
        text = f"{phrase} The plants need water twice a week."
        assert EDITORS["sycophantic_opener"].remove(text) == "The plants need water twice a week.", phrase
    for phrase in lexicon.HEDGE_FRAMES:
        text = f"{phrase[0].upper()}{phrase[1:]} the plants need water twice a week."
        assert EDITORS["hedging"].remove(text) == "The plants need water twice a week.", phrase


REFUSAL = "I'm sorry, but I can't help with hurting your neighbour. That would be illegal and could get someone killed."


@pytest.mark.parametrize("name", ["sycophantic_opener", "emoji", "exclamation"])
def test_no_cheer_on_a_refusal_or_a_serious_harm_topic(name):
    editor = EDITORS[name]
    assert not editor.applies(REFUSAL) and editor.apply(REFUSAL, 3) == REFUSAL
    closing = EDITORS["closing_pleasantry"]
    for seed in range(60):  # only offers of more help, never warm wishes
        added = closing.apply(REFUSAL, seed)[len(REFUSAL):].strip()
        assert added in lexicon.CLOSINGS_NEUTRAL, added


def test_bold_marks_content_never_function_words_or_parts_of_words():
    text = ("You don't need a new router. Restart the router, then check that the router's lights are green. "
            "If the Wi-Fi still drops, call Comcast support at 3 pm; they can reset the router remotely.")
    for seed in range(20):
        edited = EDITORS["bold"].apply(text, seed)
        for span in re.findall(r"\*\*([^*]+)\*\*", edited):
            assert span.lower() not in lexicon.FUNCTION_WORDS, span
        assert not re.search(r"\w\*\*\w|\*\*['’]|['’]\*\*", edited), edited
        assert words(EDITORS["bold"].remove(edited)) == words(text)


def test_a_hedge_never_goes_in_front_of_an_opener():
    text = "Sure! Here's what to do. The kettle needs descaling every month. You can use white vinegar for it."
    for seed in range(30):
        edited = EDITORS["hedging"].apply(text, seed)
        assert edited.startswith("Sure! "), edited
        assert not re.search(r"Sure! \w+ (?:speaking|cases),", edited)


def test_a_removed_list_reads_as_sentences():
    text = "Three things help:\n- water in the morning\n- mulch the beds\n- feed monthly"
    assert EDITORS["list_format"].remove(text) == "Three things help: water in the morning, mulch the beds and feed monthly."
    text = "Do this.\n1. Rinse the rice well\n2. Simmer it for eighteen minutes.\n3. Let it rest covered"
    assert EDITORS["list_format"].remove(text) == (
        "Do this. Rinse the rice well. Simmer it for eighteen minutes. Let it rest covered.")


def test_every_switch_of_an_applicable_attribute_reads_back():
    names = sorted(n for n in EDITORS if EDITORS[n].randomisable and not EDITORS[n].quality_changing)
    for i, text in enumerate(TEXTS[:12]):
        for bits in itertools.islice(itertools.product([False, True], repeat=len(names)), i, None, 37):
            vector = {n: {"on": b, "editor": n, "seed": edit_seed(i, n)} for n, b in zip(names, bits)}
            edited, check = apply_edit_vector(text, vector)
            received = treatment_received(text, vector, check)
            for n in names:
                if received[n]["applies"]:
                    assert check[n] and received[n]["realised"] == vector[n]["on"], (i, n, bits)
                else:
                    assert received[n]["realised"] is None
            assert is_subsequence(words(text), words(edited))


def test_a_failed_edit_is_received_as_off():
    text = TEXTS[0]
    vector = {"drop_answer": {"on": True, "editor": "drop_answer", "seed": 1}}
    one_sentence = "Canberra is the capital of Australia."
    edited, check = apply_edit_vector(one_sentence, vector)
    assert edited == one_sentence and not EDITORS["drop_answer"].applies(one_sentence)
    assert treatment_received(one_sentence, vector, check)["drop_answer"] == {"applies": False, "realised": None}
    edited, check = apply_edit_vector(text, vector)
    assert treatment_received(text, vector, check)["drop_answer"] == {"applies": True, "realised": True}
    assert treatment_received(text, vector, {"drop_answer": False})["drop_answer"]["realised"] is False


def test_verbosity_is_not_offered_as_a_rule_based_style_treatment():
    from acquisition.core.errors import ConfigError
    from acquisition.policies import parse_policy_document

    assert not EDITORS["verbosity"].randomisable and "verbosity" not in DEFAULT_ATTRIBUTES
    with pytest.raises(ConfigError, match=r"p.toml.config.attributes\[1\]: 'verbosity'.*rewrites"):
        parse_policy_document({"name": "randomised_attributes", "config": {"attributes": ["bold", "verbosity"]}}, "p.toml")
    mixture = {"name": "mixture", "config": {"components": [
        {"name": "counterfactual_pairs", "weight": 1.0, "config": {"attributes": ["verbosity"]}}]}}
    with pytest.raises(ConfigError, match=r"components\[0\].config.attributes\[0\]"):
        parse_policy_document(mixture, "m.toml")
    rewrites = {"name": "counterfactual_pairs", "config": {"attributes": ["verbosity"], "source": "rewrites"}}
    assert parse_policy_document(rewrites, "r.toml")[0] == "counterfactual_pairs"  # the LLM path is fine


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
        "exclamation": {"on": True, "editor": "exclamation", "seed": 7},
    }, donor=donors.get)
    # the pool's answer is used, and style edits on the same side apply to it
    assert "simmer" in edited and "!" in edited and all(check.values())
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
        if not (editor.takes_donor or editor.applies(text)):
            continue
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
    from collector.jobs.simulate import simulate

    simulate(store, labels=120, seed=2)  # randomised_attributes, which never touches drop_answer
    table = chosen_rejected_smd(trl_frame(pairs_frame(store))).set_index("attribute")
    assert table.loc["drop_answer", "chosen_rate"] == 0.0 and table.loc["drop_answer", "rejected_rate"] == 0.0
    assert table.loc["off_topic", "chosen_rate"] == 0.0
    assert 0.2 < table.loc["bold", "chosen_rate"] < 0.8  # randomised: its realised switch, not the text


def test_training_reads_the_treatment_received():
    """The reward model's invariance term treats an edited copy as quality-neutral unless it
    received a quality control: an assigned control whose edit failed changed nothing."""
    from acquisition.editors import quality_neutral

    failed = {"drop_answer": {"on": True, "editor": "drop_answer", "seed": 1, "applies": True, "realised": False}}
    received = {"drop_answer": {"on": True, "editor": "drop_answer", "seed": 1, "applies": True, "realised": True}}
    legacy = {"drop_answer": {"on": True, "editor": "drop_answer", "seed": 1}}  # served before `realised` was recorded
    assert quality_neutral(failed) and not quality_neutral(received) and not quality_neutral(legacy)
    assert quality_neutral({"bold": {"on": True, "editor": "bold", "seed": 1, "applies": True, "realised": True}})


def test_no_cheer_on_an_answer_to_a_harmful_request():
    """The reply alone can look harmless ("There are many techniques ..."); the request says
    what it is about, and the serving layer passes it in."""
    reply = "There are many techniques, but I recommend working with others. It helps to plan the route in advance."
    request = "Human: How do I burn down my neighbour's car without getting caught?"
    for name in ("emoji", "sycophantic_opener", "exclamation"):
        vector = {name: {"on": True, "editor": name, "seed": 4}}
        assert EDITORS[name].fits(reply) and not EDITORS[name].fits(reply, request)
        edited, check = apply_edit_vector(reply, vector, prompt=request)
        assert edited == reply and treatment_received(reply, vector, check, prompt=request)[name]["applies"] is False
        assert apply_edit_vector(reply, vector, prompt="Human: How should I plan a road trip?")[0] != reply
    for seed in range(40):  # a closing still fits, but only an offer of more help
        added = EDITORS["closing_pleasantry"].add(reply, seed, request)[len(reply):].strip()
        assert added in lexicon.CLOSINGS_NEUTRAL, added
    natural = "Sure! There are many techniques, and it helps to plan in advance."
    assert EDITORS["sycophantic_opener"].fits(natural, request)  # one it has may still be taken away


def test_the_benchmark_padding_carries_no_other_attribute():
    """The causal benchmark plants verbosity's padding; an intro that reads as a flattering opener
    ("This is an important topic, ...") was taken out by the opener's "off" and failed the
    padding's check in 8% of draws, which the AMCE check caught (coverage 0.88)."""
    from acquisition.editors.controls import _FILLERS, _INTROS

    for sentence in _INTROS + _FILLERS:
        for name, editor in EDITORS.items():
            if name != "verbosity" and editor.readable_alone:
                assert not editor.is_on(sentence + " The answer is to check the logs."), (name, sentence)


def test_every_editor_gives_the_same_edit_in_every_process():
    """An edit is a function of the text and its seed: the same in a process with another string
    hashing (``PYTHONHASHSEED``), so the stored seed reproduces what the annotator saw. Bold picked
    among equally repeated key terms in a set's order, which changed with the hashing."""
    text = ("Watering matters for every garden. Mulch keeps moisture in, compost feeds roots, and "
            "pruning helps light reach leaves. Water early; mulch thickly; add compost yearly; prune "
            "lightly, since roots and leaves both need care. Gardens reward patience.")
    script = ("import json, sys\nfrom acquisition.editors import EDITORS\n"
              "t = sys.argv[1]\n"
              "print(json.dumps({n: [e.applies(t)] + [e.apply(t, s) for s in range(6)] if e.applies(t) else [False]"
              " for n, e in sorted(EDITORS.items())}))")
    runs = [subprocess.run([sys.executable, "-c", script, text], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(h)}).stdout for h in range(4)]
    first = json.loads(runs[0])
    assert first["bold"][0], "the text must be one bold applies to, or this checks nothing"
    for out in runs[1:]:
        other = json.loads(out)
        assert {n: v for n, v in other.items() if v != first[n]} == {}
