import json

import pytest

from acquisition.core.errors import AuthError, DeconfoundError, LabelError
from collector.store import Store


def test_submit_twice_returns_first_label_and_changes_nothing(store, collector, annotator):
    pair = collector.next_pair(annotator["id"])
    first, created = store.submit_label(annotator["id"], pair.served_pair_id, "left", 2, "clearer")
    again, created_again = store.submit_label(annotator["id"], pair.served_pair_id, "right", 1, "no")
    assert created and not created_again
    assert again == first
    assert store.label_count() == 1
    assert store.labels()[0]["choice"] == "left"


def test_label_for_pair_served_to_someone_else_is_refused(store, collector, annotator):
    other, _ = store.add_annotator("other")
    pair = collector.next_pair(annotator["id"])
    with pytest.raises(LabelError, match="another annotator"):
        store.submit_label(other["id"], pair.served_pair_id, "left")
    assert store.label_count() == 0


def test_label_for_unknown_pair_is_refused(store, annotator):
    with pytest.raises(LabelError, match="does not exist"):
        store.submit_label(annotator["id"], 9999, "left")


@pytest.mark.parametrize("choice,strength", [("up", None), ("left", 7)])
def test_invalid_choice_or_strength_is_refused(store, collector, annotator, choice, strength):
    pair = collector.next_pair(annotator["id"])
    with pytest.raises(LabelError):
        store.submit_label(annotator["id"], pair.served_pair_id, choice, strength)
    assert store.served_pair(pair.served_pair_id)["status"] == "served"


def test_skipped_pair_cannot_be_labelled_and_next_pair_is_new(store, collector, annotator):
    pair = collector.next_pair(annotator["id"])
    collector.skip(annotator["id"], pair.served_pair_id)
    with pytest.raises(LabelError, match="skipped"):
        store.submit_label(annotator["id"], pair.served_pair_id, "left")
    assert collector.next_pair(annotator["id"]).served_pair_id != pair.served_pair_id


def test_open_pair_is_served_again_until_labelled(collector, annotator):
    first = collector.next_pair(annotator["id"])
    assert collector.next_pair(annotator["id"]).served_pair_id == first.served_pair_id
    collector.submit(annotator["id"], first.served_pair_id, "tie")
    assert collector.next_pair(annotator["id"]).served_pair_id != first.served_pair_id


def test_failed_pool_import_writes_nothing(store):
    before = store.counts()
    records = [
        {"prompt": "A new prompt?", "responses": [{"text": "one."}, {"text": "two."}]},
        {"prompt": "Broken", "responses": [{"no_text": True}]},
    ]
    with pytest.raises(KeyError):
        store.add_pool(records, source="test")
    assert store.counts() == before


def test_pool_texts_are_deduplicated(store):
    before = store.counts()
    store.add_pool([{"prompt": "Q?", "responses": [{"text": "a."}, {"text": "a."}, {"text": "b."}]}], "t")
    store.add_pool([{"prompt": "Q?", "responses": [{"text": "a."}]}], "t")
    after = store.counts()
    assert after["prompts"] == before["prompts"] + 1
    assert after["base_responses"] == before["base_responses"] + 2


def test_served_pair_records_everything_the_brief_asks_for(store, collector, annotator):
    pair = store.served_pair(collector.next_pair(annotator["id"]).served_pair_id)
    for column in ("annotator_id", "annotator_group", "prompt_id", "left_response_id",
                   "right_response_id", "left_edit_vector", "right_edit_vector",
                   "position_swapped", "policy_name", "policy_version", "arm",
                   "propensity_score", "acquisition_score", "model_version", "served_at"):
        assert column in pair
    assert pair["annotator_group"] == "g1"
    assert 0 < pair["propensity_score"] <= 1


def test_edited_copies_keep_parent_and_edit_vector(store, collector, annotator):
    for _ in range(10):
        pair = collector.next_pair(annotator["id"])
        collector.submit(annotator["id"], pair.served_pair_id, "left")
    edited = store._all("SELECT * FROM responses WHERE parent_response_id IS NOT NULL")
    assert edited
    for row in edited:
        assert row["edit_vector"] and row["manipulation_check"]
        vector, check = row["edit_vector"], json.loads(row["manipulation_check"])
        # every switch of an attribute that applies to the base text reads back; one that does
        # not apply left the text alone and is recorded so (realised: None)
        assert all(check[a] for a, e in vector.items() if e["applies"])
        assert all(e["realised"] is None for e in vector.values() if not e["applies"])


def test_tokens_are_hashed_and_checked(store):
    row, token = store.add_annotator("x", covariates={"lang": "en"})
    assert token not in str(store._all("SELECT * FROM annotators"))
    assert store.annotator_by_token(token)["id"] == row["id"]
    with pytest.raises(AuthError):
        store.annotator_by_token("wrong")


def test_file_database_uses_wal_and_refuses_newer_schema(tmp_path):
    path = tmp_path / "d.db"
    s = Store(path)
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.set_meta("schema_version", "999")
    s.close()
    with pytest.raises(DeconfoundError, match="newer"):
        Store(path)
