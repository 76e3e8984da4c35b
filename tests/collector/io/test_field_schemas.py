"""The field's other preference schemas, each from a row built from its documented schema (field
names, nesting and value spellings as their dataset cards give them): every comparison a line
carries becomes a pair with the right prompt, chosen and rejected, and what it compared on."""

import json

import pytest

from acquisition.core.errors import ImportFormatError
from collector.io.importers import import_file, parse_file
from collector.store import Store


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _pairs(parsed):
    return [(p.prompt, p.chosen, p.rejected, p.outcome) for p in parsed.preferences]


def test_pku_saferlhf_keeps_both_labels(tmp_path):
    row = {"prompt": "How do I pick a lock?", "response_0": "I can't help with that.",
           "response_1": "Insert a tension wrench, then rake the pins.", "prompt_source": "Alpaca3-70B",
           "response_0_source": "Alpaca-7B", "response_1_source": "Alpaca-7B",
           "is_response_0_safe": True, "is_response_1_safe": False, "response_0_harm_category": {},
           "response_1_harm_category": {"Violence": False}, "response_0_severity_level": 0,
           "response_1_severity_level": 2, "better_response_id": 1, "safer_response_id": 0,
           "response_0_sha256": "a", "response_1_sha256": "b"}
    parsed = parse_file(_jsonl(tmp_path / "pku.jsonl", [row]))
    assert parsed.format == "pku-saferlhf"
    better, safer = parsed.preferences
    assert (better.chosen, better.rejected) == (row["response_1"], row["response_0"])
    assert (safer.chosen, safer.rejected) == (row["response_0"], row["response_1"])
    assert better.covariates["dimension"] == "better" and safer.covariates["dimension"] == "safer"
    assert safer.covariates["response_0_safe"] is True
    store = Store(tmp_path / "s.db")
    assert import_file(store, tmp_path / "pku.jsonl").new_preferences == 2  # two labels, both kept
    store.close()


def test_shp_takes_the_post_as_the_prompt_and_labels_as_the_winner(tmp_path):
    row = {"post_id": "himc90", "domain": "askculinary_train", "upvote_ratio": 0.99,
           "history": "How long should I rest a steak?", "c_root_id_A": "fug3yfr", "c_root_id_B": "fug1bhg",
           "created_at_utc_A": 1593565000, "created_at_utc_B": 1593564000, "score_A": 12, "score_B": 40,
           "human_ref_A": "Five minutes.", "human_ref_B": "About half the cooking time, under foil.",
           "labels": 0, "seconds_difference": 1000.0, "score_ratio": 3.3333}
    parsed = parse_file(_jsonl(tmp_path / "shp.jsonl", [row]))
    assert parsed.format == "shp"
    assert _pairs(parsed) == [(row["history"], row["human_ref_B"], row["human_ref_A"], "chosen")]
    pref = parsed.preferences[0]
    assert pref.margin == pytest.approx(1.2040, abs=1e-3) and pref.covariates["score_B"] == 40
    assert parsed.records[0]["task_type"] == "askculinary_train"


def test_raw_ultrafeedback_pairs_every_differently_scored_completion_and_keeps_the_ratings(tmp_path):
    def completion(model, text, score, rating):
        return {"model": model, "principle": "helpfulness", "custom_system_prompt": "", "response": text,
                "annotations": {a: {"Rating": str(rating), "Rationale": "..."} for a in
                                ("helpfulness", "honesty", "instruction_following", "truthfulness")},
                "critique": "...", "overall_score": score, "fine-grained_score": score}

    row = {"source": "evol_instruct", "instruction": "Name a prime above 10.", "models": ["a", "b", "c", "d"],
           "completions": [completion("a", "11.", 5.0, 5), completion("b", "12.", 1.5, 1),
                           completion("c", "13 is prime.", 4.0, 4), completion("d", "Eleven.", 5.0, 5)],
           "correct_answers": [], "incorrect_answers": []}
    parsed = parse_file(_jsonl(tmp_path / "uf.jsonl", [row]))
    assert parsed.format == "ultrafeedback-raw"
    pairs = _pairs(parsed)
    assert len(pairs) == 5  # six pairs of four completions, less the tie (a, d both 5.0)
    assert ("Name a prime above 10.", "11.", "12.", "chosen") in pairs
    assert ("Name a prime above 10.", "13 is prime.", "12.", "chosen") in pairs
    pref = next(p for p in parsed.preferences if p.chosen == "11." and p.rejected == "12.")
    assert pref.margin == 3.5 and pref.covariates["chosen"] == {"helpfulness": 5, "honesty": 5,
                                                                "instruction_following": 5, "truthfulness": 5}
    record = next(r for r in parsed.records if r["responses"][0]["text"] == "11." and r["responses"][1]["text"] == "12.")
    assert [r["quality"] for r in record["responses"]] == [5.0, 1.5] and record["responses"][0]["model"] == "a"


def test_nectar_turns_a_seven_way_ranking_into_pairs(tmp_path):
    answers = [{"answer": f"Answer ranked {k}.", "model": f"m{k}", "rank": float(k)} for k in range(1, 8)]
    row = {"prompt": "\n\nHuman: What is the capital of Peru?\n\nAssistant:", "answers": answers[::-1],
           "turns": 1, "num_responses": 7, "source": ["sharegpt"], "good_natured": True}
    parsed = parse_file(_jsonl(tmp_path / "nectar.jsonl", [row]))
    assert parsed.format == "nectar"
    pairs = _pairs(parsed)
    assert len(pairs) == 21 and {p[0] for p in pairs} == {"What is the capital of Peru?"}
    assert ("What is the capital of Peru?", "Answer ranked 1.", "Answer ranked 7.", "chosen") in pairs
    assert all(int(c.split()[-1][:-1]) < int(r.split()[-1][:-1]) for _, c, r, _ in pairs)
    assert parsed.records[0]["task_type"] == "sharegpt"


def test_helpsteer2_and_3_preferences_with_their_strength(tmp_path):
    hs2 = [{"split": "train", "prompt": "Summarise the plot of Hamlet.", "response_1": "A prince avenges his father.",
            "response_2": "It is a play.", "preference_strength": -2,
            "preference_statement": "@Response 1 is better than @Response 2.", "preference_elaboration": "More detail."},
           {"split": "train", "prompt": "Say hi.", "response_1": "Hi.", "response_2": "Hello!", "preference_strength": 0,
            "preference_statement": "Equal.", "preference_elaboration": ""}]
    parsed = parse_file(_jsonl(tmp_path / "hs2.jsonl", hs2))
    assert parsed.format == "helpsteer2"
    assert _pairs(parsed) == [("Summarise the plot of Hamlet.", "A prince avenges his father.", "It is a play.", "chosen"),
                              ("Say hi.", "Hi.", "Hello!", "tie")]
    assert parsed.preferences[0].margin == 2.0
    hs3 = {"domain": "code", "language": "python",
           "context": [{"role": "user", "content": "Reverse a list in Python."}],
           "response1": "lst.reverse()", "response2": "lst[::-1]", "overall_preference": 1,
           "individual_preference": [{"score": 1, "reasoning": "..."}]}
    parsed = parse_file(_jsonl(tmp_path / "hs3.jsonl", [hs3]))
    assert parsed.format == "helpsteer3"
    assert _pairs(parsed) == [("Reverse a list in Python.", "lst[::-1]", "lst.reverse()", "chosen")]
    assert parsed.preferences[0].covariates == {"domain": "code", "language": "python"}


def test_a_bad_field_in_the_new_schemas_names_the_line(tmp_path):
    row = {"prompt": "p", "response_0": "a", "response_1": "b", "better_response_id": 2, "safer_response_id": 0}
    with pytest.raises(ImportFormatError, match=r"pku.jsonl, line 1, field 'better_response_id': expected one of 0, 1"):
        parse_file(_jsonl(tmp_path / "pku.jsonl", [row]))
    with pytest.raises(ImportFormatError, match=r"line 1, field 'answers\[0\].rank': missing"):
        parse_file(_jsonl(tmp_path / "n.jsonl", [{"prompt": "Human: q", "answers": [{"answer": "a"}, {"answer": "b"}]}]))


def test_a_database_from_before_several_comparisons_per_line_is_rebuilt_in_place(tmp_path):
    import sqlite3

    from collector.store.create import init_db

    path = tmp_path / "old.db"
    init_db(path)
    store = Store(path)
    import_file(store, _jsonl(tmp_path / "shp.jsonl", [{"history": "q?", "human_ref_A": "a", "human_ref_B": "b",
                                                         "labels": 1}]))
    store.close()
    conn = sqlite3.connect(path)  # the table as schema 7 made it: one preference per line
    conn.executescript("""
        CREATE TABLE old AS SELECT id, prompt_id, chosen_response_id, rejected_response_id, outcome, tie, margin, source,
            format, file_sha256, external_id, line, created_at, covariates FROM imported_preferences;
        DROP TABLE imported_preferences;
        CREATE TABLE imported_preferences (id INTEGER PRIMARY KEY, prompt_id INTEGER NOT NULL, chosen_response_id INTEGER
            NOT NULL, rejected_response_id INTEGER NOT NULL, outcome TEXT NOT NULL, tie INTEGER NOT NULL, margin REAL,
            source TEXT NOT NULL, format TEXT NOT NULL, file_sha256 TEXT NOT NULL, external_id TEXT, line INTEGER NOT NULL,
            created_at REAL NOT NULL, covariates TEXT, UNIQUE (file_sha256, line));
        INSERT INTO imported_preferences SELECT * FROM old; DROP TABLE old;
        UPDATE meta SET value = '7' WHERE key = 'schema_version';""")
    conn.commit()
    conn.close()
    store = Store(path)
    try:
        assert [p["chosen"] for p in store.imported_preferences()] == ["a"]  # kept through the rebuild
        row = {"prompt": "p", "response_0": "x", "response_1": "y", "better_response_id": 0, "safer_response_id": 1}
        assert import_file(store, _jsonl(tmp_path / "pku.jsonl", [row])).new_preferences == 2
        assert store.get_meta("schema_version") == "8"
    finally:
        store.close()


def test_oasst2_ranked_siblings_become_pairs_with_the_thread_as_prompt(tmp_path):
    def msg(mid, parent, role, text, rank=None, **extra):
        return {"message_id": mid, "parent_id": parent, "user_id": "u", "created_date": "2023-04-01T00:00:00Z",
                "text": text, "role": role, "lang": "en", "review_count": 3, "review_result": True,
                "deleted": False, "rank": rank, "synthetic": False, "model_name": None, "detoxify": None,
                "message_tree_id": "t1", "tree_state": "ready_for_export", "emojis": None, "labels": None, **extra}

    rows = [msg("p1", None, "prompter", "What is a monad?"),
            msg("a1", "p1", "assistant", "A monoid in the category of endofunctors.", rank=2),
            msg("a2", "p1", "assistant", "A way to chain computations that carry context.", rank=0),
            msg("a3", "p1", "assistant", "A design pattern for sequencing effects.", rank=1),
            msg("p2", "a2", "prompter", "Give an example."),
            msg("a4", "p2", "assistant", "Maybe: a value or nothing.", rank=0),
            msg("a5", "p2", "assistant", "Lists.", rank=1),
            msg("a6", "p2", "assistant", "A deleted reply.", rank=2, deleted=True)]
    parsed = parse_file(_jsonl(tmp_path / "oasst2.jsonl", rows))
    assert parsed.format == "oasst2"
    pairs = _pairs(parsed)
    assert len(pairs) == 4  # three ranked replies to p1, two (the deleted one is out) to p2
    assert ("What is a monad?", rows[2]["text"], rows[1]["text"], "chosen") in pairs
    thread = "User: What is a monad?\n\nAssistant: A way to chain computations that carry context.\n\nUser: Give an example."
    assert (thread, "Maybe: a value or nothing.", "Lists.", "chosen") in pairs
    store = Store(tmp_path / "o.db")
    assert import_file(store, tmp_path / "oasst2.jsonl").new_preferences == 4  # streamed twice, paired once each time
    store.close()


def test_argillas_cleaned_ultrafeedback_keeps_its_ratings_and_models(tmp_path):
    row = {"source": "evol_instruct", "prompt": "Name a prime above 10.",
           "chosen": [{"role": "user", "content": "Name a prime above 10."}, {"role": "assistant", "content": "11."}],
           "chosen-rating": 5.0, "chosen-model": "gpt-4",
           "rejected": [{"role": "user", "content": "Name a prime above 10."}, {"role": "assistant", "content": "12."}],
           "rejected-rating": 1.0, "rejected-model": "falcon-40b-instruct"}
    parsed = parse_file(_jsonl(tmp_path / "argilla.jsonl", [row]))
    assert parsed.format == "ultrafeedback" and parsed.preferences[0].margin == 4.0
    responses = parsed.records[0]["responses"]
    assert [(r["text"], r["quality"], r["model"]) for r in responses] == [
        ("11.", 5.0, "gpt-4"), ("12.", 1.0, "falcon-40b-instruct")]


def test_prism_rated_replies_become_pairs_turn_by_turn(tmp_path):
    def turn(n, role, content, score=None, chosen=False, model=None):
        return {"turn": n, "role": role, "content": content, "model_provider": "p", "model_name": model,
                "score": score, "if_chosen": chosen, "within_turn_id": 0}

    row = {"conversation_id": "c1", "user_id": "u1", "conversation_type": "unguided", "opening_prompt": "Hi",
           "conversation_turns": 2, "conversation_history": [
               turn(0, "user", "Is coffee bad for you?"),
               turn(0, "model", "In moderation it is fine.", 80, True, "m1"),
               turn(0, "model", "Yes.", 20, False, "m2"),
               turn(0, "model", "It depends on the person.", 60, False, "m3"),
               turn(1, "user", "How much is moderation?"),
               turn(1, "model", "Up to about 400 mg of caffeine a day.", 90, True, "m1"),
               turn(1, "model", "A lot.", 10, False, "m1")],
           "performance_attributes": {}, "choice_attributes": {}, "open_feedback": "", "generated_datetime": "x"}
    parsed = parse_file(_jsonl(tmp_path / "prism.jsonl", [row]))
    assert parsed.format == "prism"
    pairs = _pairs(parsed)
    assert len(pairs) == 4  # three pairs at turn 0, one at turn 1
    assert ("Is coffee bad for you?", "In moderation it is fine.", "Yes.", "chosen") in pairs
    second = "User: Is coffee bad for you?\n\nAssistant: In moderation it is fine.\n\nUser: How much is moderation?"
    assert (second, "Up to about 400 mg of caffeine a day.", "A lot.", "chosen") in pairs
    assert parsed.records[0]["task_type"] == "unguided"


def test_helpsteer2_rated_responses_are_paired_by_helpfulness_with_every_rating_kept(tmp_path):
    def rated(prompt, response, helpfulness, **others):
        return {"prompt": prompt, "response": response, "helpfulness": helpfulness, "correctness": others.get("c", 3),
                "coherence": 4, "complexity": 2, "verbosity": others.get("v", 2)}

    rows = [rated("Explain DNS.", "It maps names to addresses.", 4), rated("Explain DNS.", "Internet stuff.", 1, v=0),
            rated("Say hi.", "Hi.", 3), rated("Say hi.", "Hello!", 3)]
    parsed = parse_file(_jsonl(tmp_path / "hs2.jsonl", rows))
    assert parsed.format == "helpsteer2-ratings"
    assert _pairs(parsed) == [("Explain DNS.", "It maps names to addresses.", "Internet stuff.", "chosen")]
    pref = parsed.preferences[0]
    assert pref.line == 1 and pref.margin == 3.0 and pref.covariates["rejected"]["verbosity"] == 0
    assert [r["quality"] for r in parsed.records[0]["responses"]] == [4.0, 1.0]
