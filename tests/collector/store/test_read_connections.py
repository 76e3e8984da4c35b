"""Reads run on each thread's own read-only connection, beside the writer (WAL): a read never
waits for another thread's write transaction, sees only committed rows, and a read inside a
transaction sees that transaction's own writes."""

from __future__ import annotations

import threading
import time

from collector.serving.service import Collector
from collector.store import Store
from collector.store.create import init_db


def test_a_read_does_not_wait_for_another_threads_transaction_and_sees_only_commits(tmp_path):
    init_db(tmp_path / "d.db", demo=True)
    store = Store(tmp_path / "d.db")
    before = store.label_count()
    annotators = len(store.annotators())
    inside, release, seen = threading.Event(), threading.Event(), {}

    def writer() -> None:
        with store.transaction():
            store.add_annotator("in-flight")
            seen["inside"] = len(store.annotators())  # the transaction reads its own write
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    assert inside.wait(10)
    started = time.perf_counter()
    during = len(store.annotators())  # this thread: its own connection, no wait for the lock
    waited = time.perf_counter() - started
    release.set()
    thread.join()
    assert seen["inside"] == annotators + 1
    assert during == annotators and waited < 1.0  # the uncommitted row is not seen, and nobody waited
    assert len(store.annotators()) == annotators + 1 and store.label_count() == before  # committed: seen
    readers = list(store._readers)
    assert readers, "the main thread read on a read connection of its own"
    store.close()
    for reader in readers:  # closed with the store
        try:
            reader.execute("SELECT 1")
            raise AssertionError("a read connection outlived its store")
        except Exception as exc:  # noqa: BLE001 - sqlite3.ProgrammingError: closed
            assert "closed" in str(exc).lower()


def test_many_threads_serving_and_answering_store_every_label_once(tmp_path):
    """Concurrent annotators, each its own thread reading on its own connection: every answer
    is stored once, on the pair that was served to that annotator."""
    init_db(tmp_path / "d.db", demo=True)
    store = Store(tmp_path / "d.db")
    collector = Collector(store, seed=0)
    people = [store.add_annotator(f"a{i}")[0]["id"] for i in range(8)]
    served: dict[int, list[int]] = {p: [] for p in people}
    errors: list[BaseException] = []

    def annotate(person: int) -> None:
        try:
            for _ in range(15):
                view = collector.next_pair(person)
                served[person].append(view.served_pair_id)
                collector.submit(person, view.served_pair_id, "left")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=annotate, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    labels = store._all("SELECT l.served_pair_id, l.annotator_id, sp.annotator_id AS shown_to FROM labels l "
                        "JOIN served_pairs sp ON sp.id = l.served_pair_id")
    assert len(labels) == 8 * 15 == len({r["served_pair_id"] for r in labels})
    assert all(r["annotator_id"] == r["shown_to"] for r in labels)
    assert {r["served_pair_id"] for r in labels} == {i for ids in served.values() for i in ids}
    store.close()


def test_an_export_reads_one_state_while_labels_keep_arriving(tmp_path):
    """``Store.snapshot``: every read of the block sees the state of its first read, while
    another thread commits labels (the export's batches, its TRL weights and its card must
    describe the same labels); after the block, the new labels are seen. An export run while a
    writer commits gives a file and a card that agree."""
    from collector.io.export import card_path, export
    from collector.jobs.simulate import simulate

    init_db(tmp_path / "d.db", demo=True)
    store = Store(tmp_path / "d.db")
    simulate(store, labels=40, annotators=2, groups=["a"], seed=0)
    before = store.label_count()
    with store.snapshot():
        assert store.label_count() == before
        other = Store(tmp_path / "d.db")
        simulate(other, labels=10, annotators=1, groups=["b"], seed=1)  # commits from another connection
        other.close()
        assert store.label_count() == before and len(store.served_pair_log()) == before
    assert store.label_count() == before + 10

    # a writer commits between the export's batches of the log: the file and its card still agree
    batches = Store.served_pair_log_batches

    def interrupted(self, batch: int = 5000):
        for i, rows in enumerate(batches(self, batch=7)):
            yield rows
            if i == 0:
                writer = Store(tmp_path / "d.db")
                simulate(writer, labels=5, annotators=1, groups=["c"], seed=2)
                writer.close()

    Store.served_pair_log_batches = interrupted  # type: ignore[method-assign]
    try:
        rows = export(store, "pairs", tmp_path / "pairs.jsonl")
    finally:
        Store.served_pair_log_batches = batches  # type: ignore[method-assign]
    assert store.label_count() == before + 15  # the writer did commit, during the export
    import pandas as pd

    exported = pd.read_json(tmp_path / "pairs.jsonl", lines=True)
    card = card_path(tmp_path / "pairs.jsonl").read_text()
    assert len(exported) == rows == before + 10  # not one of the 5 labels committed mid-export
    assert f"| labelled | {before + 10} |" in card and f"| served pairs | {before + 10} |" in card


class _Guarded:
    """The writer's connection, failing any use by a thread that does not hold the store's lock
    (a read there would see another thread's uncommitted writes, and a statement it left open
    would pin a snapshot the next ``BEGIN IMMEDIATE`` cannot write from: 'database is locked')."""

    def __init__(self, conn, lock, misuses):
        self._conn, self._lock, self._misuses = conn, lock, misuses

    def execute(self, sql, *args):
        if not self._lock._is_owned():
            self._misuses.append(sql.split()[0:4])
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_serving_every_example_policy_uses_the_writers_connection_only_under_the_lock(tmp_path):
    """Every example policy (the active one reads the served log incrementally), quality control
    included, serves and takes answers with every statement on the writer's connection made
    under the store's lock; reads go to the thread's own read connection."""
    from acquisition import EXAMPLES
    from acquisition.core.config import to_dict
    from acquisition.policies import POLICIES, load_policy_file

    init_db(tmp_path / "g.db", demo=True)
    store = Store(tmp_path / "g.db")
    misuses: list[list[str]] = []
    store.db.conn = _Guarded(store.db.conn, store._lock, misuses)
    annotator, _ = store.add_annotator("guarded")
    for name in sorted(POLICIES):
        _, config = load_policy_file(str(EXAMPLES / f"{name}.toml"))
        store.activate_policy(name, to_dict(config))
        collector = Collector(store, seed=0)
        for _ in range(4):
            view = collector.next_pair(annotator["id"])
            collector.submit(annotator["id"], view.served_pair_id, "left")
    assert misuses == []
