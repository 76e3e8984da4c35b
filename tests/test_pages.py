import pytest
from streamlit.testing.v1 import AppTest

from pathlib import Path

from collector.setup import init_db
from collector.store import Store

APP = Path(__file__).resolve().parents[1] / "app.py"


@pytest.fixture
def app_db(tmp_path, monkeypatch):
    db = tmp_path / "app.db"
    init_db(db, demo=True)
    s = Store(db)
    _row, token = s.add_annotator("Page tester", group="g1")
    s.close()
    monkeypatch.setenv("DECONFOUND_DB", str(db))
    return db, token


def _labels(db):
    s = Store(db)
    try:
        return s.labels()
    finally:
        s.close()


def test_token_in_url_logs_in_and_labels_advance(app_db):
    db, token = app_db
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params["token"] = token
    at.run()
    assert not at.exception
    assert "Response A (left)" in [m.value for m in at.markdown][2]
    first = at.caption[0].value
    at.radio[0].set_value("Clearly better")
    at.button(key="annotate_right").click().run()
    assert not at.exception
    assert at.caption[0].value != first
    labels = _labels(db)
    assert len(labels) == 1 and labels[0]["choice"] == "right" and labels[0]["strength"] == 2
    assert at.sidebar.metric[0].value == "1"


def test_typed_token_and_bad_token(app_db):
    _db, token = app_db
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.text_input(key="annotate_token").input("not-a-token")
    at.button[0].click().run()
    assert "Unknown token" in at.error[0].value
    at.text_input(key="annotate_token").input(token)
    at.button[0].click().run()
    assert not at.exception
    assert any(b.label == "A is better" for b in at.button)


def test_raw_html_is_shown_as_text_not_rendered(app_db):
    db, token = app_db
    s = Store(db)
    s.add_pool([{"prompt": "Show HTML <b>please</b>", "responses": [
        {"text": "<script>alert(1)</script> one.", "quality": 3}, {"text": "<i>two</i>.", "quality": 2}]}], "t")
    s.close()
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params["token"] = token
    at.run()
    assert all(not m.proto.allow_html for m in at.markdown)


def test_demo_database_lets_a_new_annotator_sign_up_and_label(app_db):
    db, _token = app_db
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.text_input(key="annotate_signup_name").input("Newcomer")
    at.button[1].click().run()
    assert not at.exception
    at.button(key="annotate_both_bad").click().run()
    assert not at.exception
    s = Store(db)
    try:
        newcomer = [a for a in s.annotators() if a["name"] == "Newcomer"][0]
        assert newcomer["group_name"] == "self-registered"
        assert [l["choice"] for l in s.labels() if l["annotator_id"] == newcomer["id"]] == ["both_bad"]
    finally:
        s.close()


def test_signup_is_closed_without_demo(tmp_path, monkeypatch):
    db = tmp_path / "closed.db"
    init_db(db)
    monkeypatch.setenv("DECONFOUND_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    assert "annotate_signup_name" not in [t.key for t in at.text_input]
