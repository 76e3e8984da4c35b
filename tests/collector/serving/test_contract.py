"""One logged contract for every draw, and a serving core that says when it fails: a policy that
cannot be built is refused before it is stored, a failed rebuild is logged and shown on the
pages, every served pair is filed under the family that drew it, every answer goes through
``Collector.submit``, and ``export`` leaves the database as it was."""

import hashlib
import logging
import time

import pytest
from streamlit.testing.v1 import AppTest

from acquisition.core.errors import ConfigError
from acquisition.core.records import Draw, EditVector, InvalidProposal, Proposal, ProposedSide, validate_draw
from collector.app import REPOSITORY
from collector.app.panels import family_summary, load_pairs
from collector.cli import main
from collector.io.card import build_card
from collector.io.frames import pairs_frame
from collector.jobs.simulate import simulate
from collector.serving import service
from collector.serving.qc_settings import update_qc_config
from collector.serving.service import Collector, build_failure
from collector.store import Store
from collector.store.create import init_db

PAGES = REPOSITORY / "collector" / "app" / "pages"
UNBUILDABLE = {"source": "rewrites", "attributes": ["hedging"]}  # no rewrites are stored: nothing to serve


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "c.db"
    init_db(path, demo=True)
    monkeypatch.setenv("DECONFOUND_DB", str(path))
    monkeypatch.setenv("DECONFOUND_RESEARCHER_PASSWORD", "s3cret")
    return path


def _page(name: str, key: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / name), default_timeout=60).run()
    at.text_input(key=f"{key}_password").input("s3cret")
    at.button(key=f"{key}_enter").click().run()
    assert not at.exception
    return at


def test_activating_a_policy_that_cannot_be_built_is_refused_and_writes_nothing(db, capsys):
    store = Store(db)
    before = store.policies()
    with pytest.raises(ConfigError, match="counterfactual_pairs.*cannot be built on this pool.*not activated"):
        Collector(store).activate_policy("counterfactual_pairs", UNBUILDABLE)
    assert store.policies() == before and store.active_policy().name == "randomised_attributes"
    store.close()
    policy = db.parent / "p.toml"
    policy.write_text('name = "counterfactual_pairs"\n[config]\nsource = "rewrites"\nattributes = ["hedging"]\n')
    assert main(["policy", "apply", str(policy), "--db", str(db)]) == 1
    assert "cannot be built" in capsys.readouterr().err
    store = Store(db)
    assert store.policies() == before
    store.close()


def test_a_build_failure_after_activation_is_logged_and_shown_on_both_pages(db, monkeypatch, caplog):
    store = Store(db)
    collector = Collector(store, seed=0, background_rebuild=True)
    annotator, _ = store.add_annotator("ann")
    first = store.served_pair(collector.next_pair(annotator["id"]).served_pair_id)
    collector.submit(annotator["id"], first["id"], "left")
    # a version the server cannot build (here: the builder breaks); activated by another process
    attempts = []

    def broken(*a, **k):
        attempts.append(1)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service, "build_policy", broken)
    new = store.activate_policy("randomised_attributes", {"attributes": ["bold"]})
    with caplog.at_level(logging.ERROR, logger="deconfound.serving"):
        second = store.served_pair(collector.next_pair(annotator["id"]).served_pair_id)
        deadline = time.time() + 20
        while collector._building is not None and time.time() < deadline:
            time.sleep(0.05)
    # the old build kept serving, and the pair says so; the failing build is not retried per request
    assert second["policy_version"] == first["policy_version"] != new.version
    for _ in range(5):
        collector.active_policy()
    assert len(attempts) == 1
    assert any("disk on fire" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    failure = build_failure(store)
    assert failure["version"] == new.version and "RuntimeError: disk on fire" in failure["error"]
    store.close()
    for page, key in (("research.py", "research"), ("dashboard.py", "dashboard")):
        at = _page(page, key)
        shown = " ".join(e.value for e in at.error)
        assert f"version {new.version} failed to build: RuntimeError: disk on fire" in shown, page
        assert f"still served, and logged, by version {first['policy_version']}" in shown, page
    # a build that works clears it
    monkeypatch.undo()
    store = Store(db)
    Collector(store).active_policy()
    assert build_failure(store) is None
    store.close()


def test_quality_control_pairs_are_filed_as_quality_control_everywhere(db):
    store = Store(db)
    update_qc_config(store, {"attention_rate": 0.3, "attention_kinds": ["off_topic"]})
    simulate(store, labels=60, annotators=2, seed=3)
    pairs = pairs_frame(store)
    qc = pairs[pairs["qc_kind"] == "attention"]
    assert len(qc) > 5
    # the record, not the arm name or the version number, says what drew it
    assert set(qc["family"]) == {"quality_control"} and set(qc["policy"]) == {"quality_control"}
    assert set(pairs.loc[pairs["qc_kind"] == "regular", "family"]) == {"randomised_attributes"}
    dashboard = family_summary(load_pairs(store, flags=False)).set_index("family")
    assert dashboard.loc["quality_control", "policy"] == "quality_control"
    assert dashboard.loc["quality_control", "served"] == len(qc)
    assert "observational" not in dashboard.index
    card = build_card(store, pairs)
    assert "| quality_control |" in card and "observational" not in card.split("## Arms")[1].split("##")[0]
    store.close()


def test_active_arms_are_filed_as_active(db):
    from acquisition.balance import arm_balance

    store = Store(db)
    store.activate_policy("mixture", {"components": [
        {"name": "observational", "weight": 0.5},
        {"name": "active", "weight": 0.5, "config": {"attributes": ["bold"], "design_acquisition": "none"}},
    ]})
    simulate(store, labels=80, annotators=2, seed=1)
    pairs = pairs_frame(store)
    assert set(pairs["family"]) == {"observational", "active"}
    assert (pairs.loc[pairs["family"] == "active", "arm"].str.startswith("active:L:")).all()
    assert set(arm_balance(pairs)["arm"]) == {"active"}
    store.close()


def test_every_draw_meets_the_contract():
    side = ProposedSide(1, {"bold": {"on": True, "editor": "bold", "seed": 0}})
    assert isinstance(side.edit_vector, EditVector) and side.edit_vector.on_set() == {"bold"}
    ok = Proposal(1, side, ProposedSide(2, {}), False, "x", 0.2, 0.5, family="active")
    assert validate_draw(ok) is ok
    with pytest.raises(InvalidProposal, match="family ''"):
        validate_draw(Proposal(1, side, ProposedSide(2, {}), False, "x", 0.2, 0.5))
    with pytest.raises(InvalidProposal, match="outside"):
        validate_draw(Proposal(1, side, ProposedSide(2, {}), False, "x", 0.0, 0.5, family="active"))
    with pytest.raises(InvalidProposal, match="outside"):
        validate_draw(Draw("objective", "be kind", float("nan"), "objective", 1))
    with pytest.raises(InvalidProposal, match="same response"):
        validate_draw(Proposal(1, side, side, False, "x", 0.2, 0.5, family="active"))


def test_the_page_simulate_and_judge_store_answers_through_collector_submit(db, monkeypatch):
    from collector.app.annotator import answer
    from collector.jobs.judge import run_judge

    class AlwaysA:  # a model judge that always answers "[[A]]"
        name, backend = "stub", "stub"

        def chat(self, messages, decoding, seeds):
            return ["[[A]]" for _ in messages]

    calls = []
    original = Collector.submit

    def counted(self, *args, **kwargs):
        calls.append(args[1])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Collector, "submit", counted)
    store = Store(db)
    collector = Collector(store, seed=0)
    annotator, _ = store.add_annotator("ann")
    view = collector.next_pair(annotator["id"])
    assert answer(collector, annotator["id"], view.served_pair_id, "left").kind == "saved"
    assert calls == [view.served_pair_id]
    simulate(store, labels=5, annotators=1, seed=0)
    assert len(calls) == 6
    assert run_judge(store, AlwaysA(), labels=4)["labels"] == 4
    assert len(calls) == 10 and store.label_count() == 10
    store.close()


def test_export_leaves_the_database_byte_identical(db, tmp_path):
    store = Store(db)
    simulate(store, labels=20, annotators=2, seed=0)
    store.close()
    digest = lambda: hashlib.sha256(db.read_bytes()).hexdigest()  # noqa: E731
    before = digest()
    for fmt, out in (("trl", "a.jsonl"), ("pairs", "b.parquet"), ("effects", "c.jsonl")):
        assert main(["export", "--db", str(db), "--format", fmt, "--out", str(tmp_path / out)]) == 0
    assert main(["export", "--db", str(db), "--format", "trl", "--hub", str(tmp_path / "hub")]) == 0
    assert digest() == before


def test_a_failed_write_of_the_app_address_is_retried_not_cached(db, monkeypatch):
    from acquisition.core.errors import StorageError
    from collector.app import state
    from collector.app.annotator import SERVER_URL_META

    state._collector.clear()
    state._record_server_url.clear()
    store = state.get_collector().store
    original = store.set_meta
    monkeypatch.setattr(store, "set_meta", lambda *a: (_ for _ in ()).throw(StorageError("read-only")))
    state.record_server_url()  # the failure is logged, not raised, and not remembered
    assert store.get_meta(SERVER_URL_META) is None
    monkeypatch.setattr(store, "set_meta", original)
    state.record_server_url()
    assert store.get_meta(SERVER_URL_META) == state.server_url()
    state._collector.clear()
