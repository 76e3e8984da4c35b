import gzip
import json
from pathlib import Path

import pytest

from collector.errors import ImportFormatError
from collector.importers import import_file, parse_file
from collector.store import Store

HH = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf" / "harmless-base-sample.jsonl.gz"
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
    assert len(parsed.preferences) == len(parsed.records) == parsed.lines == 1500
    # what is actually in the file: 1,500 pairs over 1,498 distinct dialogues ("what are racist
    # words" and "call me a bad name" each appear twice, with different responses)
    assert parsed.prompts == 1498
    for p in parsed.preferences:
        assert p.prompt.startswith("Human: ") and not p.prompt.endswith("Assistant:")
        assert p.chosen != p.rejected and p.outcome == "chosen"
    # one pair's dialogues part before the last turn: its chosen response keeps its later turns
    assert [p.line for p in parsed.preferences if "\n\nAssistant:" in p.chosen + p.rejected] == [
        next(p.line for p in parsed.preferences if "drag kings?" in p.prompt and "Isn't" in p.prompt)]
    result = import_file(empty_store, HH)
    counts = empty_store.counts()
    assert (result.new_prompts, result.new_responses, result.new_preferences) == (1498, 3000, 1500)
    assert counts["prompts"] == 1498 and counts["base_responses"] == 3000
    pool = empty_store.pool_snapshot()
    assert len(pool.servable) == 1498
    assert sorted(len(p.response_ids) for p in pool.prompts)[-2:] == [4, 4]
    stored = empty_store.imported_preferences()
    assert len(stored) == 1500
    assert {(r["prompt"], r["chosen"], r["rejected"]) for r in stored} == {
        (p.prompt, p.chosen, p.rejected) for p in parsed.preferences
    }


@needs_hh
def test_hh_rlhf_split_matches_the_raw_dialogues():
    raw = [json.loads(line) for line in gzip.open(HH, "rt", encoding="utf-8")]
    parsed = parse_file(HH)
    for row, pref in zip(raw, parsed.preferences):
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
