import gzip
import json
from pathlib import Path

import pytest

from acquisition.core.errors import ImportFormatError
from collector.benchmarks import HH_RLHF_SAMPLE
from collector.io.importers import import_file, parse_file
from collector.store import Store

HH = HH_RLHF_SAMPLE
needs_hh = pytest.mark.skipif(not HH.exists(), reason="HH-RLHF sample not present")


@pytest.fixture
def empty_store():
    s = Store(":memory:")
    yield s
    s.close()


def write_jsonl(path: Path, rows: list, gz: bool = False) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def hh_row(i: int) -> dict:
    prefix = f"\n\nHuman: question {i}?\n\nAssistant: first answer {i}\n\nHuman: and then?\n\nAssistant:"
    return {"chosen": prefix + f" good reply {i}", "rejected": prefix + f" bad reply {i}"}


# ---------------------------------------------------------------------- HH-RLHF
@needs_hh
def test_hh_rlhf_sample_in_auto_mode(empty_store):
    parsed = parse_file(HH)
    assert parsed.format == "hh-rlhf"
    assert parsed.lines == 1500
    # four pairs end in an empty turn on one side: refused with their lines, the rest imported
    assert parsed.empty_lines == [87, 517, 926, 1104]
    assert len(parsed.preferences) == len(parsed.records) == 1496
    # what is actually in the file: 1,496 pairs over 1,494 distinct dialogues ("what are racist
    # words" and "call me a bad name" each appear twice, with different responses)
    assert parsed.prompts == 1494
    for p in parsed.preferences:
        assert p.prompt.startswith("Human: ") and not p.prompt.endswith("Assistant:")
        assert p.chosen != p.rejected and p.outcome == "chosen"
    # one pair's dialogues part before the last turn: its chosen response keeps its later turns
    assert [p.line for p in parsed.preferences if "\n\nAssistant:" in p.chosen + p.rejected] == [
        next(p.line for p in parsed.preferences if "drag kings?" in p.prompt and "Isn't" in p.prompt)]
    result = import_file(empty_store, HH)
    counts = empty_store.counts()
    assert (result.new_prompts, result.new_responses, result.new_preferences) == (1494, 2992, 1496)
    assert "lines 87, 517, 926, 1104" in result.summary()
    assert counts["prompts"] == 1494 and counts["base_responses"] == 2992
    pool = empty_store.pool_snapshot()
    assert len(pool.servable) == 1494
    assert sorted(len(p.response_ids) for p in pool.prompts)[-2:] == [4, 4]
    stored = empty_store.imported_preferences()
    assert len(stored) == 1496
    assert {(r["prompt"], r["chosen"], r["rejected"]) for r in stored} == {
        (p.prompt, p.chosen, p.rejected) for p in parsed.preferences
    }


@needs_hh
def test_hh_rlhf_split_matches_the_raw_dialogues():
    raw = [json.loads(line) for line in gzip.open(HH, "rt", encoding="utf-8")]
    parsed = parse_file(HH)
    for pref in parsed.preferences:
        row = raw[pref.line - 1]
        # the prompt is the shared dialogue before the last Assistant turn; nothing is lost
        for whole, response in ((row["chosen"], pref.chosen), (row["rejected"], pref.rejected)):
            assert whole.strip().startswith(pref.prompt)
            assert whole.rstrip().endswith(response)
            middle = whole.strip()[len(pref.prompt):]
            assert middle.lstrip().startswith("Assistant:")


def test_hh_rlhf_prompt_and_responses(tmp_path):
    path = write_jsonl(tmp_path / "hh.jsonl.gz", [hh_row(1), hh_row(2)], gz=True)
    parsed = parse_file(path)
    assert parsed.format == "hh-rlhf"
    first = parsed.preferences[0]
    assert first.prompt == "Human: question 1?\n\nAssistant: first answer 1\n\nHuman: and then?"
    assert (first.chosen, first.rejected, first.line) == ("good reply 1", "bad reply 1", 1)


def test_hh_rlhf_dialogues_that_part_before_the_last_turn(tmp_path):
    row = {
        "chosen": "\n\nHuman: q\n\nAssistant: A1\n\nHuman: more\n\nAssistant: A2",
        "rejected": "\n\nHuman: q\n\nAssistant: B1",
    }
    pref = parse_file(write_jsonl(tmp_path / "hh.jsonl", [row])).preferences[0]
    assert pref.prompt == "Human: q"
    assert pref.chosen == "A1\n\nHuman: more\n\nAssistant: A2" and pref.rejected == "B1"


def test_hh_rlhf_errors_name_file_line_and_field(tmp_path):
    rows = [hh_row(i) for i in range(5)]
    rows[3] = {"chosen": rows[3]["chosen"], "rejected": None}
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ImportFormatError, match=r"bad\.jsonl, line 4, field 'rejected': missing"):
        parse_file(path)
    rows[3] = {"chosen": "\n\nHuman: q\n\nAssistant: a", "rejected": "no turns at all"}
    with pytest.raises(ImportFormatError, match=r"line 4, field 'rejected'"):
        parse_file(write_jsonl(tmp_path / "bad.jsonl", rows), fmt="hh-rlhf")


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(hh_row(1)) + "\n" + '{"chosen": "x",\n')
    with pytest.raises(ImportFormatError, match=r"x\.jsonl, line 2, column \d+: not valid JSON"):
        parse_file(path)


# ---------------------------------------------------------------------- TRL
def test_trl_standard_with_margin_and_task_type(tmp_path, empty_store):
    rows = [{"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon.", "margin": 1.5,
             "task_type": "factual"},
            {"prompt": "2+2?", "chosen": "4", "rejected": "5"}]
    path = write_jsonl(tmp_path / "trl.jsonl", rows)
    parsed = parse_file(path, task_type="maths")
    assert parsed.format == "trl"
    assert [r["task_type"] for r in parsed.records] == ["factual", "maths"]
    assert parsed.preferences[0].margin == 1.5 and parsed.preferences[1].margin is None
    import_file(empty_store, path)
    stored = empty_store.imported_preferences()
    assert [(r["prompt"], r["chosen"], r["rejected"], r["margin"]) for r in stored] == [
        ("Capital of France?", "Paris.", "Lyon.", 1.5), ("2+2?", "4", "5", None)]
    assert stored[0]["task_type"] == "factual" and stored[1]["task_type"] == "general"


def test_trl_conversational_explicit_and_implicit_prompt(tmp_path):
    explicit = {"prompt": [{"role": "user", "content": "Hi?"}],
                "chosen": [{"role": "assistant", "content": "Hello!"}],
                "rejected": [{"role": "assistant", "content": "Go away."}]}
    implicit = {"chosen": [{"role": "user", "content": "Sky colour?"}, {"role": "assistant", "content": "Blue."}],
                "rejected": [{"role": "user", "content": "Sky colour?"}, {"role": "assistant", "content": "Green."}]}
    multi = {"chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                        {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}],
             "rejected": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                          {"role": "user", "content": "c"}, {"role": "assistant", "content": "e"}]}
    parsed = parse_file(write_jsonl(tmp_path / "conv.jsonl", [explicit, implicit, multi]))
    assert parsed.format == "trl"
    got = [(p.prompt, p.chosen, p.rejected) for p in parsed.preferences]
    assert got == [("Hi?", "Hello!", "Go away."), ("Sky colour?", "Blue.", "Green."),
                   ("User: a\n\nAssistant: b\n\nUser: c", "d", "e")]


def test_trl_conversational_bad_message_names_the_field(tmp_path):
    rows = [{"prompt": [{"role": "user", "content": "Hi?"}],
             "chosen": [{"role": "assistant", "content": "Hello!"}],
             "rejected": [{"role": "assistant"}]}]
    with pytest.raises(ImportFormatError, match=r"line 1, field 'rejected\[0\]\.content': "
                                                r"expected a string or a list of text parts, got missing"):
        parse_file(write_jsonl(tmp_path / "c.jsonl", rows))


# ---------------------------------------------------------------------- UltraFeedback
def test_ultrafeedback_binarized(tmp_path, empty_store):
    row = {"prompt": "Write a haiku.", "prompt_id": "abc123",
           "chosen": [{"role": "user", "content": "Write a haiku."}, {"role": "assistant", "content": "Old pond..."}],
           "rejected": [{"role": "user", "content": "Write a haiku."}, {"role": "assistant", "content": "No."}],
           "messages": [], "score_chosen": 8.5, "score_rejected": 2.0}
    path = write_jsonl(tmp_path / "uf.jsonl", [row])
    parsed = parse_file(path)
    assert parsed.format == "ultrafeedback"
    pref = parsed.preferences[0]
    assert (pref.prompt, pref.chosen, pref.rejected, pref.margin, pref.external_id) == (
        "Write a haiku.", "Old pond...", "No.", 6.5, "abc123")
    import_file(empty_store, path)
    pool = empty_store.pool_snapshot()
    assert sorted(pool.response_quality.values()) == [2.0, 8.5]
    assert empty_store.prompt(pool.prompts[0].id)["external_id"] == "abc123"
    row["score_chosen"] = "high"
    with pytest.raises(ImportFormatError, match=r"line 1, field 'score_chosen': expected a number"):
        parse_file(write_jsonl(tmp_path / "uf.jsonl", [row]))


# ---------------------------------------------------------------------- Chatbot Arena
def arena_row(i: int, winner: str) -> dict:
    def conv(answer: str) -> list:
        return [{"role": "user", "content": f"Question {i}"}, {"role": "assistant", "content": answer}]
    return {"question_id": f"q{i}", "model_a": "gpt-x", "model_b": "llama-y", "winner": winner,
            "judge": "arena_user_1", "conversation_a": conv(f"A{i}"), "conversation_b": conv(f"B{i}"),
            "turn": 1, "tstamp": 1700000000.0 + i}


def test_arena_battles_with_every_winner(tmp_path, empty_store):
    rows = [arena_row(1, "model_a"), arena_row(2, "model_b"), arena_row(3, "tie"), arena_row(4, "tie (bothbad)")]
    path = write_jsonl(tmp_path / "arena.jsonl", rows)
    parsed = parse_file(path)
    assert parsed.format == "arena"
    got = [(p.prompt, p.chosen, p.rejected, p.outcome, p.external_id) for p in parsed.preferences]
    assert got == [("Question 1", "A1", "B1", "chosen", "q1"), ("Question 2", "B2", "A2", "chosen", "q2"),
                   ("Question 3", "A3", "B3", "tie", "q3"), ("Question 4", "A4", "B4", "both_bad", "q4")]
    import_file(empty_store, path)
    stored = empty_store.imported_preferences()
    assert [(r["outcome"], r["tie"]) for r in stored] == [("chosen", 0), ("chosen", 0), ("tie", 1), ("both_bad", 1)]
    models = {empty_store.response(r["chosen_response_id"])["model"] for r in stored[:2]}
    assert models == {"gpt-x", "llama-y"}
    rows[2]["winner"] = "model_c"
    with pytest.raises(ImportFormatError, match=r"line 3, field 'winner': expected one of"):
        parse_file(write_jsonl(tmp_path / "arena.jsonl", rows))


# ---------------------------------------------------------------------- CSV, JSON array, Parquet
def test_csv_with_named_columns_and_multiline_cells(tmp_path):
    path = tmp_path / "prefs.csv"
    path.write_text('task_type,prompt,chosen,rejected\n'
                    'coding,"Write\nhello world","print(""hello"")",echo\n'
                    ',Say hi,Hi!,Bye.\n', encoding="utf-8")
    parsed = parse_file(path)
    assert parsed.format == "csv"
    assert [(p.prompt, p.chosen, p.rejected, p.line) for p in parsed.preferences] == [
        ("Write\nhello world", 'print("hello")', "echo", 2), ("Say hi", "Hi!", "Bye.", 4)]
    assert [r["task_type"] for r in parsed.records] == ["coding", "general"]


def test_csv_errors_name_line_and_field(tmp_path):
    path = tmp_path / "prefs.csv"
    path.write_text("prompt,chosen\nq,a\n")
    with pytest.raises(ImportFormatError, match=r"prefs\.csv, line 1, field 'rejected': the CSV header"):
        parse_file(path)
    path.write_text('prompt,chosen,rejected\nq,a,b\n"multi\nline",a,b\n,a,b\n')
    with pytest.raises(ImportFormatError, match=r"prefs\.csv, line 5, field 'prompt': empty"):
        parse_file(path)
    path.write_text("prompt,chosen,rejected\nq,a,b\nq,a\n")
    with pytest.raises(ImportFormatError, match=r"line 3, field 'rejected': 2 values for 3 columns"):
        parse_file(path)


def test_json_array_and_parquet_inputs(tmp_path):
    import pandas as pd

    rows = [{"prompt": "p1", "chosen": "c1", "rejected": "r1"}, {"prompt": "p2", "chosen": "c2", "rejected": "r2"}]
    array = tmp_path / "rows.json"
    array.write_text("[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n")
    assert [p.line for p in parse_file(array).preferences] == [2, 3]
    pq = tmp_path / "rows.parquet"
    pd.DataFrame(rows).to_parquet(pq)
    assert [(p.prompt, p.line) for p in parse_file(pq).preferences] == [("p1", 1), ("p2", 2)]
    rows[1]["chosen"] = None
    pd.DataFrame(rows).to_parquet(pq)
    with pytest.raises(ImportFormatError, match=r"rows\.parquet, line 2, field 'chosen': missing"):
        parse_file(pq)


# ---------------------------------------------------------------------- detection and all-or-nothing
def test_unknown_format_and_mismatched_format_are_refused(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(ImportFormatError, match=r"x\.jsonl, line 1: cannot tell the format"):
        parse_file(path)
    with pytest.raises(ImportFormatError, match=r"line 1, field 'model_a': missing"):
        parse_file(write_jsonl(tmp_path / "y.jsonl", [hh_row(1)]), fmt="arena")
    with pytest.raises(ImportFormatError, match="unknown format"):
        parse_file(path, fmt="sharegpt")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(ImportFormatError, match="empty"):
        parse_file(tmp_path / "empty.jsonl")


@pytest.mark.parametrize("kind", ["hh-jsonl-gz", "trl-jsonl", "csv"])
def test_one_bad_line_among_1000_imports_nothing(tmp_path, store, kind):
    before = store.counts()
    if kind == "csv":
        path = tmp_path / "big.csv"
        lines = ["prompt,chosen,rejected"] + [f"prompt {i},good {i},bad {i}" for i in range(1001)]
        lines[1 + 637] = "prompt 637,good 637"
        path.write_text("\n".join(lines) + "\n")
        bad_line, field_name = 639, "rejected"  # the header is line 1
    else:
        rows = [hh_row(i) if kind.startswith("hh") else {"prompt": f"p{i}", "chosen": f"c{i}", "rejected": f"r{i}"}
                for i in range(1001)]
        rows[637]["chosen"] = 42
        path = write_jsonl(tmp_path / "big.jsonl.gz", rows, gz=kind.endswith("gz"))
        bad_line, field_name = 638, "chosen"
    with pytest.raises(ImportFormatError) as info:
        import_file(store, path)
    assert f"{path}, line {bad_line}, field '{field_name}'" in str(info.value)
    assert store.counts() == before
    assert store.imported_preferences() == []


def test_store_writes_pool_and_preferences_in_one_transaction(store):
    before = store.counts()
    records = [{"prompt": "new prompt", "task_type": "general", "responses": [{"text": "a"}, {"text": "b"}]}]
    good = {"prompt": "new prompt", "chosen": "a", "rejected": "b", "outcome": "chosen", "line": 1}
    bad = {**good, "chosen": "not in the records", "line": 2}
    with pytest.raises(Exception, match="line 2"):
        store.add_imported(records, [good, bad], source="x.jsonl", fmt="trl", file_sha256="f")
    assert store.counts() == before and store.imported_preferences() == []
    assert store.add_imported(records, [good], source="x.jsonl", fmt="trl", file_sha256="f") == (1, 2, 1)


def test_identical_sides_keep_their_texts_but_store_no_preference(tmp_path, empty_store):
    rows = [{"prompt": "p", "chosen": "same", "rejected": "same"}, {"prompt": "q", "chosen": "x", "rejected": "y"}]
    result = import_file(empty_store, write_jsonl(tmp_path / "t.jsonl", rows))
    assert result.identical_lines == (1,) and result.new_preferences == 1
    assert "lines 1" in result.summary()
    assert empty_store.counts()["prompts"] == 2


# ---------------------------------------------------------------------- CLI
def test_cli_import_prints_what_it_imported_and_fails_cleanly(tmp_path, capsys):
    from collector.cli import main

    db = str(tmp_path / "x.db")
    path = write_jsonl(tmp_path / "hh.jsonl", [hh_row(i) for i in range(3)])
    assert main(["import", str(path), "--db", db, "--no-embed"]) == 1  # a mistyped --db is not created
    assert "no database here" in capsys.readouterr().err and not Path(db).exists()
    assert main(["init", "--db", db]) == 0
    assert main(["import", str(path), "--db", db, "--no-embed", "--task-type", "dialogue"]) == 0
    out = capsys.readouterr().out
    assert "(hh-rlhf): 3 pairs; 3 new prompts, 6 new responses, 3 new human preferences." in out
    assert {p["task_type"] for p in Store(db).imported_preferences()} == {"dialogue"}
    bad = write_jsonl(tmp_path / "bad.jsonl", [hh_row(7), {"chosen": 1, "rejected": "x"}])
    assert main(["import", str(bad), "--db", db, "--no-embed", "--format", "hh-rlhf"]) == 1
    err = capsys.readouterr().err
    assert f"error: {bad}, line 2, field 'chosen': expected a string, got a number." in err
    assert Store(db).counts()["prompts"] == 3


def test_import_returns_once_the_rows_are_stored_and_embeds_only_when_asked(tmp_path, capsys):
    """The default import embeds nothing in the foreground: it says how many texts the trainer
    will embed; ``--embed`` prints its estimate before it starts, then embeds them all."""
    import json as json_

    from collector.cli import main
    from collector.store.create import init_db

    path = tmp_path / "p.jsonl"
    path.write_text("".join(json_.dumps({"prompt": f"Question {i}?", "chosen": f"Yes {i}.", "rejected": f"No {i}."})
                            + "\n" for i in range(5)))
    db = str(tmp_path / "d.db")
    init_db(db)
    assert main(["import", str(path), "--db", db, "--json"]) == 0
    out = json_.loads(capsys.readouterr().out)
    assert out["embedded"] is None and out["not_embedded"] == 15  # 5 prompts, 10 responses
    assert not [p for p in tmp_path.rglob("*") if "embedding" in p.name]  # no embedding cache was made
    path.write_text(json_.dumps({"prompt": "Another?", "chosen": "A.", "rejected": "B."}) + "\n")
    assert main(["import", str(path), "--db", db, "--embed"]) == 0
    captured = capsys.readouterr()
    assert "embedding 18 texts at about" in captured.err and "Embedded 18 new texts" in captured.out
    store = Store(db)
    assert store.pending_texts() == 0
    store.close()
    assert (tmp_path / "models" / "embeddings.sqlite").exists()
