import gzip
import io
import json

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from collector.app import REPOSITORY
from collector.io.card import build_card
from collector.io.export import export_bytes
from collector.io.frames import FORMATS, pairs_frame, trl_frame
from collector.jobs.simulate import simulate
from collector.store import Store
from collector.store.create import init_db

PAGE = REPOSITORY / "collector" / "app" / "pages" / "data.py"


@pytest.fixture
def data_db(tmp_path, monkeypatch):
    db = tmp_path / "d.db"
    init_db(db, demo=True)
    store = Store(db)
    simulate(store, labels=60, seed=4)
    store.close()
    monkeypatch.setenv("DECONFOUND_DB", str(db))
    monkeypatch.setenv("DECONFOUND_RESEARCHER_PASSWORD", "s3cret")
    return db


def _page():
    return AppTest.from_file(str(PAGE), default_timeout=60)


def _logged_in():
    at = _page().run()
    at.text_input(key="data_password").input("s3cret")
    at.button(key="data_enter").click().run()
    assert not at.exception
    return at


def test_locked_without_the_password(data_db):
    at = _page().run()
    assert not at.file_uploader and not at.get("download_button")
    at.text_input(key="data_password").input("guess")
    at.button(key="data_enter").click().run()
    assert "Wrong researcher password" in at.error[0].value
    assert not at.file_uploader


def test_download_buttons_for_every_format_and_card(data_db):
    at = _logged_in()
    assert {b.label for b in at.get("download_button")} == {"JSONL", "Parquet", "Card"}
    assert len(at.get("download_button")) == 3 * len(FORMATS)
    assert not at.exception


def test_upload_imports_a_file(data_db):
    at = _logged_in()
    rows = [{"prompt": f"Imported prompt {i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(5)]
    content = gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())
    at.file_uploader(key="data_upload").set_value(("prefs.jsonl.gz", content, "application/gzip")).run()
    at.text_input(key="data_task_type").input("imported").run()
    at.button(key="data_import").click().run()
    assert not at.exception and not at.error
    assert "prefs.jsonl.gz (trl): 5 pairs; 5 new prompts, 10 new responses, 5 new human preferences." in at.success[0].value
    store = Store(data_db)
    assert [(r["prompt"], r["task_type"], r["source"]) for r in store.imported_preferences()] == [
        (f"Imported prompt {i}", "imported", "prefs.jsonl.gz") for i in range(5)]
    store.close()


def test_a_bad_upload_names_file_line_and_field_and_imports_nothing(data_db):
    at = _logged_in()
    store = Store(data_db)
    before = store.counts()
    text = "prompt,chosen,rejected\nq1,a,b\nq2,a\n"
    at.file_uploader(key="data_upload").set_value(("bad.csv", text.encode(), "text/csv")).run()
    at.button(key="data_import").click().run()
    assert "bad.csv, line 3, field 'rejected': 2 values for 3 columns." in at.error[0].value
    assert store.counts() == before and store.imported_preferences() == []
    store.close()


@pytest.mark.parametrize("fmt", FORMATS)
def test_download_contents_are_the_exports(data_db, fmt):
    store = Store(data_db)
    jsonl = pd.read_json(io.BytesIO(export_bytes(store, fmt, "jsonl")), lines=True)
    parquet = pd.read_parquet(io.BytesIO(export_bytes(store, fmt, "parquet")))
    assert len(jsonl) == len(parquet) > 0 and list(jsonl.columns) == list(parquet.columns)
    if fmt == "trl":
        assert list(parquet["chosen"]) == list(trl_frame(pairs_frame(store))["chosen"])
    assert build_card(store, pairs_frame(store), fmt=fmt).startswith("# Dataset card")
    store.close()
