"""The annotator page through AppTest: widgets selected by key, answers bound to the pair shown."""

import re

import pytest
from streamlit.testing.v1 import AppTest

from collector.app import APP_SCRIPT
from collector.store import Store
from collector.store.create import init_db

APP = APP_SCRIPT


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


def _open_app(token: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params["token"] = token
    at.run()
    assert not at.exception
    return at


def _shown_pair(at: AppTest) -> int:
    """The pair id in the page's caption: what the annotator sees."""
    caption = next(c.value for c in at.caption if c.value.startswith("Pair #"))
    return int(re.match(r"Pair #(\d+)", caption).group(1))


def _press(at: AppTest, choice: str) -> AppTest:
    return at.button(key=f"annotate_{choice}_{_shown_pair(at)}").click().run()


def test_token_in_url_logs_in_and_labels_advance(app_db):
    db, token = app_db
    at = _open_app(token)
    first = _shown_pair(at)
    assert "**Response A**" in [m.value for m in at.markdown]
    at.segmented_control(key="annotate_strength").set_value("Clearly better")
    at.text_input(key="annotate_reason").input("more accurate")
    _press(at, "right")
    assert not at.exception
    assert _shown_pair(at) != first
    labels = _labels(db)
    assert [(row["served_pair_id"], row["choice"], row["strength"], row["rationale"]) for row in labels] == [
        (first, "right", 2, "more accurate")]
    assert "1 label given" in [c.value for c in at.caption]
    assert at.text_input(key="annotate_reason").value == "" and at.segmented_control(key="annotate_strength").value is None
    assert any(f"Saved pair #{first}: B is better." in s.value for s in at.success)


def test_answer_from_a_stale_tab_writes_nothing_and_says_so(app_db):
    """Two tabs of one annotator show the same pair; tab 1 answers it; tab 2's later click is
    for that pair, not for tab 1's next one, so it writes nothing and tab 2 moves on."""
    db, token = app_db
    tab1, tab2 = _open_app(token), _open_app(token)
    shown = _shown_pair(tab1)
    assert _shown_pair(tab2) == shown
    _press(tab1, "left")
    following = _shown_pair(tab1)
    _press(tab2, "right")  # the button drawn with `shown`
    assert not tab2.exception
    labels = _labels(db)
    assert [(row["served_pair_id"], row["choice"]) for row in labels] == [(shown, "left")]
    assert any("already answered" in w.value and "another tab" in w.value for w in tab2.warning)
    assert _shown_pair(tab2) == following  # the current pair, still unanswered
    _press(tab2, "tie")
    assert [(row["served_pair_id"], row["choice"]) for row in _labels(db)] == [(shown, "left"), (following, "tie")]


def test_strength_only_with_a_winner_and_the_answer_stays_on_screen(app_db):
    db, token = app_db
    at = _open_app(token)
    pair = _shown_pair(at)
    at.segmented_control(key="annotate_strength").set_value("Much better")
    at.text_input(key="annotate_reason").input("equal to me")
    _press(at, "tie")
    assert _labels(db) == []
    assert _shown_pair(at) == pair
    assert any("goes with A or B" in e.value for e in at.error)
    assert at.text_input(key="annotate_reason").value == "equal to me"  # kept to try again
    at.segmented_control(key="annotate_strength").set_value(None)
    _press(at, "tie")
    assert [(row["served_pair_id"], row["choice"], row["strength"], row["rationale"]) for row in _labels(db)] == [
        (pair, "tie", None, "equal to me")]


def test_a_storage_failure_shows_one_sentence_and_keeps_the_answer(app_db):
    from collector.app.state import _collector

    db, token = app_db
    at = _open_app(token)
    pair = _shown_pair(at)
    at.text_input(key="annotate_reason").input("clearer")
    store = _collector(str(db)).store  # the app's own connection
    store.db.execute("PRAGMA query_only = ON")  # every write now fails as on a read-only disk
    try:
        _press(at, "left")
    finally:
        store.db.execute("PRAGMA query_only = OFF")
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "read-only" in errors[0] and "Nothing was saved" in errors[0]
    assert "Traceback" not in errors[0] and "sqlite3" not in errors[0]
    assert _shown_pair(at) == pair and at.text_input(key="annotate_reason").value == "clearer"
    assert _labels(db) == []
    _press(at, "left")
    assert [(row["served_pair_id"], row["rationale"]) for row in _labels(db)] == [(pair, "clearer")]


def test_skip_then_repeat_skip_from_a_stale_view(app_db):
    db, token = app_db
    tab1, tab2 = _open_app(token), _open_app(token)
    shown = _shown_pair(tab1)
    _press(tab1, "skip")
    assert _shown_pair(tab1) != shown
    _press(tab2, "left")
    assert _labels(db) == []
    assert any("skipped" in w.value for w in tab2.warning)
    s = Store(db)
    try:
        assert s.served_pair(shown)["status"] == "skipped"
    finally:
        s.close()


def test_typed_token_and_bad_token(app_db):
    _db, token = app_db
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.text_input(key="annotate_token_input").input("not-a-token")
    at.button(key="annotate_start").click().run()
    assert "Unknown token" in at.error[0].value
    at.text_input(key="annotate_token_input").input(token)
    at.button(key="annotate_start").click().run()
    assert not at.exception
    assert any(b.label == "A is better" for b in at.button)
    assert at.query_params["token"] in (token, [token])  # a reload logs in again


def test_raw_html_is_shown_as_text_not_rendered(app_db):
    db, token = app_db
    s = Store(db)
    s.add_pool([{"prompt": "Show HTML <b>please</b>", "responses": [
        {"text": "<script>alert(1)</script> one.", "quality": 3}, {"text": "<i>two</i>.", "quality": 2}]}], "t")
    s.close()
    at = _open_app(token)
    assert all(not m.proto.allow_html for m in at.markdown)


def test_demo_database_lets_a_new_annotator_sign_up_and_label(app_db):
    db, _token = app_db
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.text_input(key="annotate_signup_name").input("Newcomer")
    at.button(key="annotate_signup").click().run()
    assert not at.exception
    assert any("personal link is in the sidebar" in i.value for i in at.info)
    shown = next(m.value for m in at.sidebar.markdown if "token=" in m.value)
    link = re.fullmatch(r"\[(\S+)\]\((\S+)\)", shown).group(2)
    assert re.fullmatch(r"http://\S+/\?token=[\w-]+", link)
    _press(at, "both_bad")
    assert not at.exception
    s = Store(db)
    try:
        newcomer = [a for a in s.annotators() if a["name"] == "Newcomer"][0]
        assert newcomer["group_name"] == "self-registered"
        assert [row["choice"] for row in s.labels() if row["annotator_id"] == newcomer["id"]] == ["both_bad"]
    finally:
        s.close()


@pytest.mark.parametrize("name,message", [
    ("Page tester", "is taken"), ("page   TESTER", "is taken"), ("zero\u200bwidth", "invisible"), ("   ", "must not be empty"),
])
def test_sign_up_refuses_taken_long_and_empty_names(app_db, name, message):
    db, _token = app_db
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.text_input(key="annotate_signup_name").input(name)
    at.button(key="annotate_signup").click().run()
    assert not at.exception
    assert any(message in e.value for e in at.error)
    s = Store(db)
    try:
        assert [a["name"] for a in s.annotators()] == ["Page tester"]
    finally:
        s.close()


def test_names_are_shown_as_text_not_markdown(app_db):
    db, _token = app_db
    s = Store(db)
    _row, token = s.add_annotator("[click](http://evil.example) ![x](http://evil.example/i.png) **bold**",
                                  group="<b>g</b>")
    s.close()
    at = _open_app(token)
    shown = next(m.value for m in at.sidebar.markdown if "click" in m.value)
    assert "](http" not in shown.replace("\\]\\(http", "") and "\\[click\\]" in shown and "\\*\\*bold" in shown
    assert "\\<b\\>g\\</b\\>" in shown


def test_signup_is_closed_without_demo(tmp_path, monkeypatch):
    db = tmp_path / "closed.db"
    init_db(db)
    monkeypatch.setenv("DECONFOUND_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    assert "annotate_signup_name" not in [t.key for t in at.text_input]


def test_the_study_settings_reach_the_page_and_the_quota_ends_it(app_db):
    from collector.serving.study import update_study_config

    db, token = app_db
    s = Store(db)
    update_study_config(s, {"title": "Harmlessness study", "guidelines": "Pick the **less harmful** reply.",
                            "objective": "Judge which response is more harmless", "quota": 2,
                            "completion_message": "You are done, thank you.", "completion_code": "PAID-7"})
    s.close()
    at = _open_app(token)
    texts = [m.value for m in at.markdown]
    assert "Pick the **less harmful** reply." in texts  # the guidelines, in the sidebar
    assert "**Judge which response is more harmless**" in texts  # the objective above the pair
    assert "#### Harmlessness study" in texts
    assert "0 of 2 labels" in [c.value for c in at.caption]
    at = _press(at, "left")
    assert "1 of 2 labels" in [c.value for c in at.caption]
    at = _press(at, "tie")
    assert not at.exception
    assert "You are done, thank you." in [m.value for m in at.markdown]
    assert [c.value for c in at.code if c.value == "PAID-7"]
    assert not [c for c in at.caption if c.value.startswith("Pair #")]  # no pair after the quota
    assert len(_labels(db)) == 2


PROLIFIC = {"PROLIFIC_PID": "5f1a2b3c4d5e6f7a8b9c0d1e", "STUDY_ID": "65aa00bb11cc22dd33ee44ff",
            "SESSION_ID": "sess_0123456789"}


def _crowd_study(db, **changes):
    from collector.serving.study import update_study_config

    s = Store(db)
    try:
        update_study_config(s, {"crowd_entry": "prolific", "quota": 3, "completion_code": "C1A2B3",
                                "completion_url": "https://app.prolific.com/submissions/complete?cc=C1A2B3",
                                **changes})
    finally:
        s.close()


def _open_with(params: dict) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    return at


def test_a_prolific_url_creates_the_participant_once_and_logs_them_in_again(app_db):
    db, _token = app_db
    _crowd_study(db)
    at = _open_with(PROLIFIC)
    _press(at, "left")
    s = Store(db)
    crowd = [a for a in s.annotators() if a["external_id"]]
    s.close()
    assert len(crowd) == 1 and crowd[0]["name"] == "Participant 1" and crowd[0]["group_name"] == "crowd"
    import json
    assert json.loads(crowd[0]["covariates"]) == {"platform": "prolific", "prolific_pid": PROLIFIC["PROLIFIC_PID"],
                                                  "study_id": PROLIFIC["STUDY_ID"], "session_id": PROLIFIC["SESSION_ID"]}
    assert PROLIFIC["PROLIFIC_PID"] not in " ".join(m.value for m in at.markdown)  # never shown as the name
    again = _open_with(PROLIFIC)  # the same URL later: the same annotator, progress kept
    assert "1 of 3 labels" in [c.value for c in again.caption]
    s = Store(db)
    assert len([a for a in s.annotators() if a["external_id"]]) == 1
    s.close()
    _press(again, "right")
    done = _press(again, "tie")
    assert "C1A2B3" in [c.value for c in done.code]
    assert done.get("link_button")[0].proto.url.endswith("cc=C1A2B3")


def test_a_broken_prolific_url_is_refused_and_creates_nobody(app_db):
    db, _token = app_db
    _crowd_study(db)
    at = _open_with({"PROLIFIC_PID": "5f1a2b3c4d5e6f7a8b9c0d1e"})
    assert "missing STUDY_ID, SESSION_ID" in at.error[0].value
    at = _open_with({**PROLIFIC, "PROLIFIC_PID": "<script>"})
    assert "PROLIFIC_PID is not a valid id" in at.error[0].value
    s = Store(db)
    assert not [a for a in s.annotators() if a["external_id"]]
    s.close()


def test_the_generic_participant_form(app_db):
    db, _token = app_db
    _crowd_study(db, crowd_entry="participant", crowd_group="panel")
    _open_with({"participant": "p-0042"})
    s = Store(db)
    (row,) = [a for a in s.annotators() if a["external_id"]]
    s.close()
    assert row["external_id"] == "participant:p-0042" and row["group_name"] == "panel"


def test_an_hh_rlhf_dialogue_is_shown_as_turns(tmp_path, monkeypatch):
    from collector.io.importers import import_file

    db = tmp_path / "hh.db"
    init_db(db)
    dialogue = "\n\nHuman: What is a good first pet?\n\nAssistant: A goldfish is easy.\n\nHuman: And a dog?"
    rows = [{"chosen": dialogue + "\n\nAssistant: A dog needs daily walks.",
             "rejected": dialogue + "\n\nAssistant: Dogs are bad."}]
    (tmp_path / "hh.jsonl").write_text("\n".join(__import__("json").dumps(r) for r in rows) + "\n")
    s = Store(db)
    import_file(s, tmp_path / "hh.jsonl")
    _row, token = s.add_annotator("Reader")
    s.close()
    monkeypatch.setenv("DECONFOUND_DB", str(db))
    at = _open_app(token)
    messages = at.get("chat_message")
    assert [m.proto.name for m in messages] == ["user", "assistant", "user"]
    assert "Earlier in the conversation (2 turns)" in [e.label for e in at.expander]
    assert "And a dog?" in [m.value for m in at.markdown]
    assert not [m for m in at.markdown if m.value.startswith("Human:")]  # no flat transcript
