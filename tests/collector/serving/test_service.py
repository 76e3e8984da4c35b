"""The Collector in the app keeps serving while a new policy, pool or model is built."""

import pytest

from collector.serving.service import Collector
from collector.store import Store
from collector.store.create import init_db


@pytest.fixture
def store(tmp_path):
    init_db(tmp_path / "s.db", demo=True)
    s = Store(tmp_path / "s.db")
    yield s
    s.close()


def test_a_policy_change_never_makes_a_request_wait_on_the_rebuild(store, monkeypatch):
    """In the app (background_rebuild), a request after a policy change is served by the current
    policy while the new one is built, and records that policy's version; the new one serves
    once it is whole."""
    import threading

    from acquisition.core.config import to_dict
    from acquisition.policies import RandomisedAttributesConfig
    from collector.serving import service

    collector = Collector(store, seed=0, background_rebuild=True)
    first, _ = store.add_annotator("first")
    old = store.served_pair(collector.next_pair(first["id"]).served_pair_id)["policy_version"]
    release, started = threading.Event(), threading.Event()
    real = service.build_policy

    def slow_build(*args, **kwargs):
        started.set()
        assert release.wait(30)  # the rebuild is held until the test lets it go
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "build_policy", slow_build)
    new = store.activate_policy("randomised_attributes", to_dict(RandomisedAttributesConfig(attributes=["emoji"])))
    second, _ = store.add_annotator("second")
    served = store.served_pair(collector.next_pair(second["id"]).served_pair_id)  # returns with the builder held
    assert started.wait(10) and served["policy_version"] == old
    release.set()
    for _ in range(200):
        if collector.active_policy()[1]["version"] == new["version"]:
            break
        threading.Event().wait(0.05)
    third, _ = store.add_annotator("third")
    assert store.served_pair(collector.next_pair(third["id"]).served_pair_id)["policy_version"] == new["version"]


@pytest.mark.parametrize("concurrency", [1, 2])
def test_at_most_concurrency_requests_run_at_once_and_every_one_is_served(store, monkeypatch, concurrency):
    """Twelve annotators asking and answering at once: never more than ``concurrency`` of their
    requests inside the store together, and every one gets its pair and its label stored."""
    import threading

    collector = Collector(store, seed=0, concurrency=concurrency)
    inside, most, count = [0], [0], threading.Lock()

    def counted(method):
        def wrapper(*args, **kwargs):
            with count:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            try:
                threading.Event().wait(0.002)  # long enough for the others to pile in
                return method(*args, **kwargs)
            finally:
                with count:
                    inside[0] -= 1
        return wrapper

    monkeypatch.setattr(store, "open_served_pair", counted(store.open_served_pair))
    monkeypatch.setattr(store, "submit_label", counted(store.submit_label))
    people = [store.add_annotator(f"a{i}")[0]["id"] for i in range(12)]
    errors: list[BaseException] = []

    def annotate(annotator_id):
        try:
            for _ in range(3):
                view = collector.next_pair(annotator_id)
                collector.submit(annotator_id, view.served_pair_id, "left")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=annotate, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert most[0] == concurrency  # reached (twelve threads) and never passed
    assert store.db.execute("SELECT COUNT(*) FROM labels").fetchone()[0] == 36


def test_a_concurrency_below_one_is_refused(store):
    from acquisition.core.errors import ConfigError

    with pytest.raises(ConfigError, match="concurrency 0"):
        Collector(store, concurrency=0)
