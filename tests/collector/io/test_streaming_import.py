"""The streamed import (JSON Lines and CSV, two passes, one transaction) gives exactly what the
whole-file import gives: the same rows stored, the same summary, the same error words."""

import gzip
import json

import pytest

from acquisition.core.errors import ImportFormatError
from collector.io.importers import import_file, import_parsed, parse_file
from collector.store import Store


def _rows(n=30):
    rows = [{"prompt": f"Question {i}?", "chosen": f"A good answer {i}.", "rejected": f"A poor answer {i}."}
            for i in range(n)]
    rows[5] = dict(rows[4])  # a duplicate line
    rows[7] = {"prompt": "Blank?", "chosen": " ", "rejected": "x"}  # refused
    rows[9] = {"prompt": "Same?", "chosen": "same", "rejected": "same"}  # identical sides
    rows[11]["chosen"] = "Keeps a raw line separator \u2028 and a form feed \x0c inside the string."
    return rows


def _write(path, rows, gz=False, raw_lines=None):
    text = "\n".join(raw_lines if raw_lines is not None else [json.dumps(r, ensure_ascii=False) for r in rows]) + "\n"
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _both(path, tmp_path, monkeypatch, **kw):
    """(streamed result, whole-file result, rows of each database) or the two error messages."""
    out = []
    for k, streamed in enumerate((True, False)):
        store = Store(str(tmp_path / f"db{k}-{path.name}.sqlite"))
        try:
            if streamed:
                result = import_file(store, path, **kw)
            else:
                result = import_parsed(store, parse_file(path, **kw))
            tables = {t: store._all(f"SELECT * FROM {t} ORDER BY id") for t in ("prompts", "responses", "imported_preferences")}
            for rows in tables.values():
                for r in rows:
                    r.pop("created_at", None)
            out.append((result.summary(), tables))
        except ImportFormatError as exc:
            out.append(("error", str(exc)))
        finally:
            store.close()
    return out


@pytest.mark.parametrize("gz", [False, True])
def test_a_streamed_jsonl_import_stores_what_the_whole_file_import_stores(tmp_path, monkeypatch, gz):
    monkeypatch.setattr("collector.io.importers.IMPORT_BATCH", 4)  # several batches in the one transaction
    path = _write(tmp_path / ("pairs.jsonl.gz" if gz else "pairs.jsonl"), _rows(), gz=gz)
    streamed, whole = _both(path, tmp_path, monkeypatch)
    assert streamed == whole
    assert "1 lines repeat" in streamed[0] and "blank prompt or response (lines 8)" in streamed[0]
    assert len(streamed[1]["imported_preferences"]) == 27


def test_a_streamed_csv_import_matches_too(tmp_path, monkeypatch):
    path = tmp_path / "pairs.csv"
    path.write_text('prompt,chosen,rejected\n"Q1?","yes, ""quoted""\nover two lines",no\nQ2?,b,c\n', encoding="utf-8")
    streamed, whole = _both(path, tmp_path, monkeypatch)
    assert streamed == whole and "2 pairs" in streamed[0]


@pytest.mark.parametrize("case", ["bad_json", "bad_utf8", "bad_field", "late_bad_field"])
def test_errors_are_the_same_words_and_nothing_is_written(tmp_path, monkeypatch, case):
    monkeypatch.setattr("collector.io.importers.IMPORT_BATCH", 4)
    lines = [json.dumps(r) for r in _rows()]
    if case == "bad_json":
        lines[6] = '{"prompt": "x", "chosen": '
    elif case == "late_bad_field":
        lines[-1] = json.dumps({"prompt": "x", "chosen": 3, "rejected": "y"})
    elif case == "bad_field":
        lines[2] = json.dumps({"prompt": "x", "chosen": ["a"], "rejected": "y"})
    path = tmp_path / f"{case}.jsonl"
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if case == "bad_utf8":
        data = data.replace(b"Question 3?", b"Question \xff3?")
    path.write_bytes(data)
    streamed, whole = _both(path, tmp_path, monkeypatch)
    assert streamed[0] == "error" and streamed == whole, (streamed, whole)
    assert "line" in streamed[1]
    store = Store(str(tmp_path / f"db0-{path.name}.sqlite"))
    try:
        assert store.counts()["prompts"] == 0  # the streamed import wrote nothing, late error included
    finally:
        store.close()


def test_the_import_reports_both_phases(tmp_path):
    path = _write(tmp_path / "p.jsonl", _rows(20))
    calls = []
    store = Store(str(tmp_path / "db.sqlite"))
    try:
        import_file(store, path, progress=lambda *a: calls.append(a[:3]))
    finally:
        store.close()
    phases = [c[0] for c in calls]
    assert "checked" in phases and phases[-1] == "writing" and calls[-1][1] == calls[-1][2] == 18
