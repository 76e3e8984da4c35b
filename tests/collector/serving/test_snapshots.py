"""The pool as columns: built incrementally, saved by a builder process, swapped in by the server."""

import itertools
import threading

import numpy as np
import pytest

from acquisition.core.pool import PoolArrays
from acquisition.policies.active import AcquisitionScores, Active, ActiveConfig, base_pairs
from collector.serving import snapshots
from collector.serving.service import Collector
from collector.store import Store
from collector.store.create import init_db


def records(start: int, n: int, k: int = 3) -> list[dict]:
    def text(i: int, j: int) -> str:  # the second answer of each prompt has a first sentence to drop
        return f"answer {i}.{j} 42" + (". It holds. More follows." if j == 1 else "")

    return [{"prompt": f"prompt {i}", "task_type": ("code", "general")[i % 2],
             "responses": [{"text": text(i, j), "quality": float(j) if i % 3 else None} for j in range(k + i % 2)]}
            for i in range(start, start + n)]


@pytest.fixture
def store(tmp_path):
    init_db(tmp_path / "s.db")
    s = Store(tmp_path / "s.db")
    yield s
    s.close()


def old_snapshot_table(store: Store) -> list[tuple[int, str, tuple[int, ...]]]:
    """What the snapshot held before it was columns: every prompt with its responses by id."""
    prompts = store._tuples("SELECT id, task_type FROM prompts ORDER BY id")
    responses = store._tuples("SELECT id, prompt_id FROM responses WHERE parent_response_id IS NULL "
                              "AND qc_kind IS NULL ORDER BY id")
    by = {}
    for rid, pid in responses:
        by.setdefault(pid, []).append(rid)
    return [(pid, t, tuple(by.get(pid, ()))) for pid, t in prompts]


def test_incremental_columns_equal_a_full_read_and_the_old_table(store, tmp_path):
    store.add_pool(records(0, 40), source="a")
    first = store.pool_arrays()
    store.add_pool(records(40, 25) + [{"prompt": "prompt 3", "task_type": "code",
                                       "responses": [{"text": "a late answer to an old prompt"}]}], source="b")
    grown, full = store.pool_arrays(previous=first), store.pool_arrays()
    for name in ("prompt_ids", "task_codes", "offsets", "response_ids"):
        assert np.array_equal(getattr(grown, name), getattr(full, name)), name
    assert np.array_equal(grown.quality, full.quality, equal_nan=True) and grown.version == full.version == 2
    pool = store.pool_snapshot(lazy_texts=True, arrays=grown)
    table = [(p.id, p.task_type, p.response_ids) for p in pool.prompts]
    assert table == old_snapshot_table(store)
    assert [p.text for p in pool.prompts][:2] == ["prompt 0", "prompt 1"]
    assert pool.prompt(4).response_ids == old_snapshot_table(store)[3][2]  # ids start at 1
    assert len(pool.prompt(4).response_ids) == 5  # prompt 3 (4 answers) gained its late one
    saved = PoolArrays.load(grown.save(tmp_path / "cols"))
    assert all(np.array_equal(getattr(saved, n), getattr(grown, n), equal_nan=True) for n in
               ("prompt_ids", "task_codes", "offsets", "response_ids", "quality"))
    store.add_pool(records(70, 6), source="c")  # new prompts only: the old columns are appended to
    appended, full = store.pool_arrays(previous=grown), store.pool_arrays()
    assert all(np.array_equal(getattr(appended, n), getattr(full, n), equal_nan=True) for n in
               ("prompt_ids", "task_codes", "offsets", "response_ids", "quality"))
    # a stale previous (a response it knew is gone, as after restoring an older file) is not extended
    fake = PoolArrays(first.version, first.prompt_ids, first.task_codes, first.task_types, first.offsets,
                      first.response_ids + 10_000, first.quality)
    assert np.array_equal(store.pool_arrays(previous=fake).response_ids, full.response_ids)


def test_helpers_match_the_old_loops(store):
    store.add_pool(records(0, 30), source="a")
    pool = store.pool_snapshot(lazy_texts=True)
    order = [r for p in pool.prompts for r in p.response_ids]
    for prompt in list(pool.prompts)[:5]:
        others = [r for r in order if r not in prompt.response_ids]
        assert [pool.other_response(prompt.id, k) for k in range(len(others))] == others
        for r in prompt.response_ids:
            assert pool.prompt_of(r) == prompt.id
    by_type = pool.by_task_type()
    assert {t: [p.id for p in s] for t, s in by_type.items()} == {
        t: [p.id for p in pool.servable if p.task_type == t] for t in ("code", "general")}
    assert pool.response_quality == {r: q for r, q in store._tuples(
        "SELECT id, quality FROM responses WHERE quality IS NOT NULL")}


def test_active_pair_table_is_the_old_loop_in_the_same_order(store):
    store.add_pool(records(0, 20) + [{"prompt": "one answer only", "responses": [{"text": "alone"}]}], source="a")
    pool = store.pool_snapshot(lazy_texts=True)
    expected = [(p.id, a, b) for p in pool.servable for a, b in itertools.combinations(sorted(p.response_ids), 2)]
    prompt, low, high, _ = base_pairs(pool)
    assert list(zip(prompt.tolist(), low.tolist(), high.tolist())) == expected
    scores = AcquisitionScores("v1", {expected[3]: 5.0, expected[7]: 1.0})
    policy = Active(ActiveConfig(design_acquisition="none"), pool, acquisition_scores=scores)
    assert policy.raw[3] == 5.0 and policy.raw[7] == 1.0 and np.allclose(policy.raw[[0, 1, 2]], 3.0)
    assert abs(policy.probability.sum() - 1) < 1e-12
    rng = np.random.default_rng(0)
    drawn = [policy.propose(None, rng) for _ in range(300)]
    scored = {frozenset(expected[3][1:]): 5.0, frozenset(expected[7][1:]): 1.0}
    for d in drawn:  # an unscored pair is drawn at the average score but records none
        assert d.acquisition_score == scored.get(frozenset((d.left.base_response_id, d.right.base_response_id)))
    assert any(d.acquisition_score is None for d in drawn) and any(d.acquisition_score == 5.0 for d in drawn)
    p, a, b = expected[3]
    drawn_off = {a: {"on": False} for a in policy.config.attributes}  # a record active could have served
    assert policy.propensity_of(None, p, *[type("S", (), {"base_response_id": x, "edit_vector": drawn_off})()
                                           for x in (b, a)])[0] > 0
    assert policy.propensity_of(None, p, *[type("S", (), {"base_response_id": x, "edit_vector": {}})()
                                           for x in (b, a)])[0] == 0  # no draw recorded: not active's


def test_the_server_swaps_in_a_snapshot_its_builder_process_saved(store, monkeypatch):
    """Off the request path a large pool is read by ``python -m collector snapshot`` in another
    process: the old policy serves meanwhile, the saved columns are what the new one uses, and
    the next build reads nothing when the pool did not move."""
    monkeypatch.setenv("DECONFOUND_SNAPSHOT_PROCESS_MIN", "0")  # every pool counts as large
    store.add_pool(records(0, 30), source="a")
    store.activate_policy("randomised_attributes", {})
    collector = Collector(store, seed=0, background_rebuild=True)
    annotator, _ = store.add_annotator("a")
    first = collector.next_pair(annotator["id"])
    collector.submit(annotator["id"], first.served_pair_id, "left")
    assert snapshots.build_snapshot(store.path)["attention_flags"] is False  # QC off: no text is read
    from collector.serving.qc_settings import update_qc_config

    update_qc_config(store, {"attention_rate": 0.1, "attention_kinds": ["drop_answer"]})  # the builder flags them
    store.add_pool(records(30, 10), source="b")
    built = threading.Event()
    real = snapshots.build_in_process

    def spy(path):
        out = real(path)
        built.set()
        return out

    monkeypatch.setattr(snapshots, "build_in_process", spy)
    collector.next_pair(annotator["id"])  # served by the old policy; starts the rebuild
    assert built.wait(60)
    for _ in range(200):
        if collector.active_policy()[0].pool.version == 2:
            break
        threading.Event().wait(0.05)
    policy = collector.active_policy()[0]
    assert policy.pool.version == 2 and snapshots.saved_versions(store.path) == [1, 2]
    assert isinstance(policy.pool.arrays.response_ids, np.memmap)  # mapped from the builder's files
    assert [(p.id, p.task_type, p.response_ids) for p in policy.pool.prompts] == old_snapshot_table(store)
    drop = snapshots.drop_flag()
    assert set(policy.pool.arrays.response_ids[np.asarray(policy.pool.arrays.droppable)].tolist()) == {
        r for r, t in store._tuples("SELECT id, text FROM responses WHERE parent_response_id IS NULL") if drop(t)}
    assert len(policy.pool.droppable_ids(drop)) == 40  # one a prompt
    changed = store.activate_policy("randomised_attributes", {"attributes": ["emoji"]})
    monkeypatch.setattr(snapshots, "build_in_process", lambda path: pytest.fail("the pool did not move"))
    for _ in range(200):
        if collector.active_policy()[1]["version"] == changed["version"]:
            break
        threading.Event().wait(0.05)
    new_policy, row = collector.active_policy()
    assert row["version"] == changed["version"] and new_policy.pool is policy.pool  # reused, not read again


def test_attention_checks_on_a_large_pool_wait_for_the_builder_not_the_request(store, monkeypatch):
    """Turning drop_answer attention checks on must not make a request read every text: the
    server serves regular pairs until the builder process has flagged them, then the checks."""
    from collector.serving.qc_settings import update_qc_config

    monkeypatch.setenv("DECONFOUND_SNAPSHOT_PROCESS_MIN", "0")  # every pool counts as large
    store.add_pool(records(0, 30), source="a")
    store.activate_policy("randomised_attributes", {})
    collector = Collector(store, seed=0, background_rebuild=True)
    annotator, _ = store.add_annotator("a")
    first = collector.next_pair(annotator["id"])  # the first build, in this process: no flags
    collector.submit(annotator["id"], first.served_pair_id, "left")
    assert collector.active_policy()[0].pool.arrays.droppable is None
    update_qc_config(store, {"attention_rate": 0.9, "attention_kinds": ["drop_answer"]})
    monkeypatch.setattr("acquisition.core.pool.flag_texts",
                        lambda *a: pytest.fail("texts flagged on the request path"))
    served = collector.next_pair(annotator["id"])  # no flags yet: a regular pair, and the builder starts
    assert store.served_pair(served.served_pair_id)["qc_kind"] == "regular"
    collector.submit(annotator["id"], served.served_pair_id, "left")
    for _ in range(300):
        if collector.active_policy()[0].pool.arrays.droppable is not None:
            break
        threading.Event().wait(0.05)
    assert collector.active_policy()[0].pool.arrays.droppable is not None
    kinds = []
    for _ in range(10):
        view = collector.next_pair(annotator["id"])
        kinds.append(store.served_pair(view.served_pair_id)["qc_kind"])
        collector.submit(annotator["id"], view.served_pair_id, "left")
    assert "attention" in kinds


def test_a_replaced_snapshot_and_its_policy_are_freed_at_once(store):
    """A snapshot, and the policy built on it, are freed as soon as nothing refers to them, not at
    the next full garbage collection: the snapshot's prompt sequences referred back to it, and a
    server swapping policies every 10 s at a million responses kept the old ones (bench_scale)."""
    import gc
    import weakref

    store.add_pool(records(0, 30), source="t")
    gc.collect()
    gc.disable()
    try:
        pool = store.pool_snapshot(lazy_texts=True)
        assert len(pool.prompts[2:5]) == 3 and pool.by_task_type() and pool.prompt(pool.prompts[0].id).text
        policy = Active(ActiveConfig(design_acquisition="none"), pool)
        refs = [weakref.ref(pool), weakref.ref(policy), weakref.ref(pool.arrays)]
        del pool, policy
        assert [r() for r in refs] == [None, None, None]
    finally:
        gc.enable()


def test_the_server_process_settings_take_on_linux():
    """The app's process setup (``configure_server_process``): the switch interval always; the
    allocator settings and ``malloc_trim`` where glibc is (Debian, as CI runs)."""
    import platform
    import sys

    from collector.serving import memory

    before = sys.getswitchinterval()
    try:
        took = memory.configure_server_process()
        assert sys.getswitchinterval() == pytest.approx(memory.SWITCH_INTERVAL_S)
    finally:
        sys.setswitchinterval(before)
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert took
        np.ones(64 * 1024 * 1024 // 8).sum()  # something freed to hand back
        memory.release_free_memory()  # returns whether pages went back: nothing to assert on that
