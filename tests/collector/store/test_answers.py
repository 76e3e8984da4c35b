"""Every answer lands on the pair the annotator saw: one open pair per annotator whatever the
concurrency, answers to a replaced pair write nothing, honest latency, storage failures."""

import multiprocessing
import sqlite3
import threading
import time

import pytest

from acquisition.core.errors import LabelError, StalePairError, StorageError
from collector.app.annotator import answer
from collector.serving.service import Collector
from collector.store import Store
from collector.store.create import init_db


@pytest.fixture
def db_file(tmp_path):
    path = tmp_path / "answers.db"
    init_db(path, demo=True)
    s = Store(path)
    row, _ = s.add_annotator("ann", group="g")
    s.close()
    return path, row["id"]


def _open_pairs(path, annotator_id):
    s = Store(path)
    try:
        return s._all("SELECT id FROM served_pairs WHERE annotator_id = ? AND status = 'served'", [annotator_id])
    finally:
        s.close()


def test_eight_concurrent_next_pair_requests_leave_one_open_pair(db_file):
    """Eight requests at once, each on its own connection (as two tabs in two app processes):
    exactly one open pair, and every request gets that same pair."""
    path, annotator_id = db_file
    collectors = [Collector(Store(path), seed=i) for i in range(8)]
    barrier, served, errors = threading.Barrier(8), [], []

    def request(c: Collector) -> None:
        barrier.wait()
        try:
            served.append(c.next_pair(annotator_id).served_pair_id)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    for _round in range(5):
        threads = [threading.Thread(target=request, args=(c,)) for c in collectors]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        open_pairs = _open_pairs(path, annotator_id)
        assert len(open_pairs) == 1
        assert set(served) == {open_pairs[0]["id"]}
        collectors[0].submit(annotator_id, open_pairs[0]["id"], "left")
        served.clear()
    for c in collectors:
        c.store.close()


def _serve_in_process(path, annotator_id, seed, start, out):
    start.wait()
    c = Collector(Store(path), seed=seed)
    out.put(c.next_pair(annotator_id).served_pair_id)
    c.store.close()


def test_eight_processes_asking_at_once_leave_one_open_pair(db_file):
    path, annotator_id = db_file
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_serve_in_process, args=(path, annotator_id, i, start, out)) for i in range(8)]
    for p in procs:
        p.start()
    start.set()
    ids = {out.get(timeout=60) for _ in procs}
    for p in procs:
        p.join(timeout=60)
    open_pairs = _open_pairs(path, annotator_id)
    assert len(open_pairs) == 1 and ids == {open_pairs[0]["id"]}


def test_answer_after_the_lease_ran_out_lands_on_the_pair_shown(db_file):
    path, annotator_id = db_file
    c = Collector(Store(path), seed=0, lease_seconds=0.05)
    shown = c.next_pair(annotator_id).served_pair_id
    time.sleep(0.1)  # the lease runs out while the pair is on screen
    label = c.submit(annotator_id, shown, "left")
    assert label["served_pair_id"] == shown
    assert c.store.served_pair(shown)["status"] == "labelled"
    c.store.close()


def test_a_pair_replaced_after_its_lease_cannot_take_an_answer(db_file):
    path, annotator_id = db_file
    c = Collector(Store(path), seed=0, lease_seconds=0.05)
    old = c.next_pair(annotator_id).served_pair_id
    time.sleep(0.1)
    new = c.next_pair(annotator_id).served_pair_id  # e.g. a reload in another tab
    assert new != old and c.store.served_pair(old)["status"] == "expired"
    with pytest.raises(StalePairError, match="released after its lease ran out"):
        c.submit(annotator_id, old, "right")
    assert c.store.label_count() == 0
    result = answer(c, annotator_id, old, "right")
    assert result.kind == "elsewhere" and "not saved" in result.message
    assert len(_open_pairs(path, annotator_id)) == 1
    c.store.close()


def test_double_press_saves_once_and_is_reported_as_a_repeat(collector, annotator):
    pair = collector.next_pair(annotator["id"]).served_pair_id
    first = answer(collector, annotator["id"], pair, "left")
    second = answer(collector, annotator["id"], pair, "right", answered_here=True)
    assert (first.kind, second.kind) == ("saved", "repeat")
    assert "already saved as “A is better”" in second.message
    assert [(row["served_pair_id"], row["choice"]) for row in collector.store.labels()] == [(pair, "left")]


@pytest.mark.parametrize("choice,strength", [("tie", 3), ("both_bad", 1), ("left", True), ("left", 2.0), ("left", 0)])
def test_strength_only_with_a_winner_and_only_1_to_3(collector, annotator, choice, strength):
    pair = collector.next_pair(annotator["id"]).served_pair_id
    with pytest.raises(LabelError):
        collector.submit(annotator["id"], pair, choice, strength)
    assert collector.store.label_count() == 0
    assert collector.store.served_pair(pair)["status"] == "served"


@pytest.mark.parametrize("rationale", [b"bytes", 7, "x" * 2001])
def test_rationale_must_be_short_text(collector, annotator, rationale):
    pair = collector.next_pair(annotator["id"]).served_pair_id
    with pytest.raises(LabelError, match="rationale"):
        collector.submit(annotator["id"], pair, "left", None, rationale)
    assert collector.store.label_count() == 0


def test_latency_runs_from_the_pair_shown_to_the_answer(collector, annotator):
    pair = collector.next_pair(annotator["id"]).served_pair_id
    served_at = collector.store.served_pair(pair)["served_at"]
    label = collector.submit(annotator["id"], pair, "left", shown_at=served_at + 2.0, answered_at=served_at + 2.4)
    assert label["latency_ms"] == 400 and label["shown_at"] == pytest.approx(served_at + 2.0)


def test_full_disk_refuses_with_one_sentence_and_writes_nothing(db_file):
    path, annotator_id = db_file
    c = Collector(Store(path), seed=0)
    pair = c.next_pair(annotator_id).served_pair_id
    conn = c.store.db.conn
    conn.execute("CREATE TABLE filler (x TEXT)")
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0] + 2}")
    for size in (500, 50, 1):  # fill every free byte: a full disk
        with pytest.raises(sqlite3.OperationalError, match="full"):
            while True:
                conn.execute("INSERT INTO filler VALUES (?)", ["x" * size])
    with pytest.raises(StorageError, match="disk holding the database is full. Nothing was saved") as info:
        c.submit(annotator_id, pair, "left", None, "\N{GRINNING FACE}" * 2000)  # 8 kB: needs new pages
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    conn.execute("DROP TABLE filler")
    assert c.store.label_count() == 0 and c.store.served_pair(pair)["status"] == "served"
    assert c.submit(annotator_id, pair, "left")["served_pair_id"] == pair
    c.store.close()


def test_old_databases_with_several_open_pairs_keep_only_the_newest(tmp_path):
    path = tmp_path / "old.db"
    init_db(path, demo=True)
    s = Store(path)
    a, _ = s.add_annotator("a")
    c = Collector(s, seed=0, lease_seconds=0.01)
    first = c.next_pair(a["id"]).served_pair_id
    s.db.execute("DROP INDEX served_pairs_one_open")  # as an old schema had it
    time.sleep(0.02)
    s.db.execute("UPDATE served_pairs SET status = 'served', lease_expires_at = ? WHERE id = ?", [time.time() + 60, first])
    pair = s.served_pair(first)
    s.db.execute("INSERT INTO served_pairs (" + ", ".join(k for k in pair if k != "id") + ") VALUES ("
                 + ", ".join("?" for k in pair if k != "id") + ")",
                 [v.to_json() if hasattr(v, "to_json") else v for k, v in pair.items() if k != "id"])
    s.close()
    s = Store(path)  # the schema check repairs it
    try:
        rows = s._all("SELECT id, status FROM served_pairs ORDER BY id")
        assert [r["status"] for r in rows] == ["expired", "served"]
    finally:
        s.close()


def test_leases_left_by_annotators_who_went_away_are_released(db_file):
    path, first = db_file
    store = Store(path)
    c = Collector(store, seed=0, lease_seconds=60)
    gone = c.next_pair(first).served_pair_id
    second, _ = store.add_annotator("later")
    t0 = time.time()
    assert c.release_expired_leases(now=t0) == 0  # still on lease
    assert c.release_expired_leases(now=t0 + 90) == 0  # ran out, but less than one lease ago: an answer is still taken
    assert c.release_expired_leases(now=t0 + 200) == 1  # ran out more than one lease ago
    assert store.served_pair(gone)["status"] == "expired"
    assert c.next_pair(second["id"]).served_pair_id != gone
    store.close()
