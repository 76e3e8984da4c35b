"""Rows shaped exactly like today's public preference datasets import (field names, nesting and
value spellings copied from their dataset viewers)."""

import json

import pytest

from collector.io.importers import import_file, parse_file
from collector.store import Store


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_trl_lib_ultrafeedback_binarized_has_no_prompt_field(tmp_path):
    row = {"chosen": [{"content": "Name a prime above 10.", "role": "user"}, {"content": "11 is prime.", "role": "assistant"}],
           "rejected": [{"content": "Name a prime above 10.", "role": "user"}, {"content": "12.", "role": "assistant"}],
           "score_chosen": 8.5, "score_rejected": 3.0}
    parsed = parse_file(_jsonl(tmp_path / "uf.jsonl", [row]))
    assert parsed.format == "ultrafeedback"
    pref = parsed.preferences[0]
    assert (pref.prompt, pref.chosen, pref.rejected, pref.margin) == ("Name a prime above 10.", "11 is prime.", "12.", 5.5)


def test_lmarena_140k_both_bad_and_content_parts(tmp_path):
    def turn(role, text):
        return {"role": role, "content": [{"type": "text", "text": text, "image": None, "mimeType": None}],
                "num_tokens": 5}

    row = {"id": "8a1f", "model_a": "gemini-2.5-pro", "model_b": "claude-opus-4", "winner": "both_bad",
           "conversation_a": [turn("user", "Explain RAID 5."), turn("assistant", "Striping with parity.")],
           "conversation_b": [turn("user", "Explain RAID 5."), turn("assistant", "It is a disk thing.")],
           "full_conversation": [], "conv_metadata": {"sum_user_tokens": 4}, "category_tag": {},
           "language": "en", "is_code": False, "timestamp": "2025-06-01 12:00:00"}
    with_image = {"role": "user", "content": [{"type": "image", "image": {"url": "x"}, "text": None},
                                              {"type": "text", "text": "What is it?"}]}
    image_only = dict(row, id="8a20", conversation_a=[with_image, turn("assistant", "A cat.")],
                      conversation_b=[with_image, turn("assistant", "A dog.")], winner="model_b")
    parsed = parse_file(_jsonl(tmp_path / "lmarena.jsonl", [row, image_only]))
    assert parsed.format == "arena"
    first, second = parsed.preferences
    assert first.outcome == "both_bad" and first.prompt == "Explain RAID 5." and first.chosen == "Striping with parity."
    assert second.outcome == "chosen" and second.prompt == "What is it?" and second.chosen == "A dog."
    assert parsed.records[1]["responses"][0]["model"] == "claude-opus-4"


def test_arena_100k_conversations_as_json_strings(tmp_path):
    conv = [{"role": "user", "content": "Write a haiku about rain."}, {"role": "assistant", "content": "Soft rain on tin roofs"}]
    other = [conv[0], {"role": "assistant", "content": "Rain is wet."}]
    row = {"question_id": "q1", "model_a": "vicuna-13b", "model_b": "koala-13b", "winner": "tie (bothbad)",
           "judge": "arena_user_973", "conversation_a": json.dumps(conv), "conversation_b": json.dumps(other),
           "turn": 1, "anony": True, "language": "English", "tstamp": 1682351591.1322}
    parsed = parse_file(_jsonl(tmp_path / "arena100k.jsonl", [row]))
    pref = parsed.preferences[0]
    assert pref.outcome == "both_bad" and pref.chosen == "Soft rain on tin roofs" and pref.external_id == "q1"


def test_kaggle_lmsys_arena_55k_csv_with_multi_turn_prompts(tmp_path):
    path = tmp_path / "train.csv"
    rows = [
        ["30192", "gpt-4-1106-preview", "gpt-4-0613", json.dumps(["Is it morally right to kill mosquitoes?"]),
         json.dumps(["It depends on the ethical framework."]), json.dumps(["Many people think so."]), "1", "0", "0"],
        ["53567", "koala-13b", "gpt-4-0613", json.dumps(["Hi", "And in French?"]),
         json.dumps(["Hello!", "Bonjour !"]), json.dumps(["Hey", "Salut"]), "0", "1", "0"],
        ["65089", "gpt-3.5-turbo-0613", "mistral-medium", json.dumps(["Explain function calling."]),
         json.dumps(["It lets a model call tools."]), json.dumps(["Tools are called."]), "0", "0", "1"],
    ]
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "model_a", "model_b", "prompt", "response_a", "response_b", "winner_model_a",
                    "winner_model_b", "winner_tie"])
        w.writerows(rows)
    store = Store(str(tmp_path / "k.db"))
    try:
        result = import_file(store, path)
        assert result.format == "arena-kaggle" and result.new_preferences == 3
        prefs = store.imported_preferences()
    finally:
        store.close()
    by_id = {p["external_id"]: p for p in prefs}
    assert by_id["30192"]["chosen"] == "It depends on the ethical framework."
    assert by_id["53567"]["chosen"] == "Salut" and by_id["53567"]["prompt"] == (
        "User: Hi\n\nAssistant: Hello!\n\nUser: And in French?")
    assert by_id["65089"]["outcome"] == "tie"


def test_a_bad_content_part_is_named(tmp_path):
    import pytest

    from acquisition.core.errors import ImportFormatError

    row = {"model_a": "a", "model_b": "b", "winner": "model_a",
           "conversation_a": [{"role": "user", "content": [{"type": "text", "text": 3}]}],
           "conversation_b": [{"role": "user", "content": "x"}]}
    with pytest.raises(ImportFormatError, match=r"line 1, field 'conversation_a\[0\]\.content\[0\]\.text': expected a string"):
        parse_file(_jsonl(tmp_path / "bad.jsonl", [row]))


def test_arena_judges_are_kept_and_imported_preferences_export_with_include_imported(tmp_path):
    from collector.io.export import export
    from collector.io.frames import pairs_frame, trl_frame

    conv = [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}]
    other = [conv[0], {"role": "assistant", "content": "Lyon."}]
    rows = [{"question_id": "q1", "model_a": "m1", "model_b": "m2", "winner": "model_a", "judge": "arena_user_7",
             "conversation_a": conv, "conversation_b": other, "language": "English", "tstamp": 1682351591.5},
            {"question_id": "q2", "model_a": "m1", "model_b": "m2", "winner": "tie", "judge": "arena_user_8",
             "conversation_a": conv, "conversation_b": other, "language": "English", "tstamp": 1682351599.0}]
    store = Store(str(tmp_path / "a.db"))
    try:
        import_file(store, _jsonl(tmp_path / "arena.jsonl", rows))
        stored = {p["external_id"]: json.loads(p["covariates"]) for p in store.imported_preferences()}
        assert stored["q1"] == {"judge": "arena_user_7", "language": "English", "tstamp": 1682351591.5}
        assert trl_frame(pairs_frame(store)).empty  # nothing collected here
        n = export(store, "trl", tmp_path / "out.jsonl", include_imported=True)
        assert n == 1  # the tie is not a TRL row
        out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
        assert out[0]["chosen"] == "Paris." and out[0]["policy"] == "imported:arena.jsonl"
        assert out[0]["propensity_score"] is None and json.loads(out[0]["annotator_covariates"])["judge"] == "arena_user_7"
        assert export(store, "trl", tmp_path / "plain.jsonl") == 0
    finally:
        store.close()


def _two_turn_battle(winner="model_b", second_user="And in Python?"):
    def msg(role, text):
        return {"role": role, "content": text}

    a = [msg("user", "How do I reverse a list?"), msg("assistant", "Use reversed()."),
         msg("user", "And in Python?"), msg("assistant", "lst[::-1] copies it reversed.")]
    b = [msg("user", "How do I reverse a list?"), msg("assistant", "Iterate from the end."),
         msg("user", second_user), msg("assistant", "Call lst.reverse() to do it in place.")]
    return {"question_id": "q2", "model_a": "vicuna-13b", "model_b": "koala-13b", "winner": winner,
            "judge": "arena_user_1", "conversation_a": a, "conversation_b": b, "turn": 2, "anony": True,
            "language": "English", "tstamp": 1682351591.0}


def test_a_two_turn_arena_battle_round_trips_by_turns(tmp_path):
    """The prompt is the conversation before the last answers (model_a's earlier answer as the
    history, as the Kaggle layout keeps it), the responses the last assistant turns; exported as
    Arena, the battle has its two user turns again."""
    from acquisition.core.turns import prompt_turns
    from collector.io.frames import arena_frame, pairs_frame
    from collector.jobs.simulate import simulate

    path = _jsonl(tmp_path / "arena33k.jsonl", [_two_turn_battle()])
    pref = parse_file(path).preferences[0]
    assert pref.chosen == "Call lst.reverse() to do it in place." and pref.rejected == "lst[::-1] copies it reversed."
    assert "And in Python?" not in pref.chosen + pref.rejected  # no user turn inside a response
    assert prompt_turns(pref.prompt) == _two_turn_battle()["conversation_a"][:3]
    store = Store(tmp_path / "s.db")
    import_file(store, path)
    [stored] = store.imported_preferences()
    assert json.loads(stored["covariates"])["history_from"] == "model_a"
    store.activate_policy("observational", {})
    simulate(store, labels=1, annotators=1, seed=0)
    [battle] = arena_frame(pairs_frame(store)).to_dict("records")
    assert [m["content"] for m in battle["conversation_a"] if m["role"] == "user"] == [
        "How do I reverse a list?", "And in Python?"]
    assert battle["turn"] == 2 and battle["conversation_a"][:3] == battle["conversation_b"][:3]
    assert {battle["conversation_a"][3]["content"], battle["conversation_b"][3]["content"]} == {
        pref.chosen, pref.rejected}
    store.close()


def test_a_battle_whose_sides_answer_different_user_turns_is_refused_by_line(tmp_path):
    import pytest

    from acquisition.core.errors import ImportFormatError

    path = _jsonl(tmp_path / "bad.jsonl", [_two_turn_battle(), _two_turn_battle(second_user="And in Rust?")])
    with pytest.raises(ImportFormatError, match=r"bad.jsonl, line 2, field 'conversation_b\[2\].content'.*different requests"):
        parse_file(path)


@pytest.mark.parametrize("ext", ["parquet", "jsonl"])
def test_exports_with_and_without_imported_preferences_concatenate(tmp_path, ext):
    """--include-imported keeps every column and its type (ids stay integers, nullable), so the
    two exports load and concatenate in datasets."""
    import datasets

    from collector.io.export import export
    from collector.jobs.simulate import simulate
    from collector.store.create import init_db

    conv = [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}]
    other = [conv[0], {"role": "assistant", "content": "Lyon."}]
    init_db(tmp_path / "c.db", demo=True)
    store = Store(tmp_path / "c.db")
    try:
        simulate(store, labels=20, annotators=2, seed=0)
        import_file(store, _jsonl(tmp_path / "arena.jsonl", [{
            "question_id": "q1", "model_a": "m1", "model_b": "m2", "winner": "model_a",
            "conversation_a": conv, "conversation_b": other}]))
        export(store, "trl", tmp_path / f"plain.{ext}")
        export(store, "trl", tmp_path / f"both.{ext}", include_imported=True)
    finally:
        store.close()
    kind = "parquet" if ext == "parquet" else "json"
    plain = datasets.load_dataset(kind, data_files=str(tmp_path / f"plain.{ext}"), split="train")
    both = datasets.load_dataset(kind, data_files=str(tmp_path / f"both.{ext}"), split="train")
    assert plain.features == both.features
    assert both.features["served_pair_id"].dtype == "int64" and both.features["policy_version"].dtype == "int64"
    joined = datasets.concatenate_datasets([plain, both])
    assert len(joined) == 2 * len(plain) + 1 and joined[-1]["served_pair_id"] is None
