"""Online training: new labels bump the version; a killed run costs nothing."""

import hashlib
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from collector.app import REPOSITORY
from collector.jobs.simulate import simulate
from collector.serving.service import Collector
from collector.store import Store
from collector.store.create import init_db
from models.checkpoints import Checkpoints
from models.online import OnlineTrainer, TrainingConfig, build_pair_data
from models.reward import ModelConfig


class HashEmbedder:
    """Deterministic stand-in for MiniLM so worker tests take seconds (the real one is tested
    in test_embeddings.py)."""

    def embed(self, texts):
        out = np.stack([np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16))
                        .normal(size=32) for t in texts]).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


FAST = TrainingConfig(retrain_every=30, min_labels=10, eval_responses=10,
                      params=ModelConfig(hidden=16, ensemble=2, epochs=3))


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "d.db"
    init_db(path, demo=True)
    return path


def test_worker_picks_up_new_labels_and_bumps_the_version(db, tmp_path):
    trainer = OnlineTrainer(partial(Store, db), tmp_path / "models", FAST, HashEmbedder())
    store = Store(db)
    simulate(store, labels=40, seed=1)
    assert trainer.due(store)
    first = trainer.train_once()
    assert first["version"] == "v1" and trainer.current_version() == "v1"
    assert not trainer.due(store)
    simulate(store, labels=30, seed=2)
    assert trainer.due(store)
    second = trainer.train_once()
    assert second["version"] == "v2" and trainer.current_version() == "v2"
    metrics = json.loads((tmp_path / "models" / "v2" / "metrics.json").read_text())
    assert metrics["labels"] == 70 and "sensitivity_verbosity" in metrics and "pearson_reward_length" in metrics
    assert json.loads((tmp_path / "models" / "v2" / "config.json").read_text())["model"] == "bt_mlp"
    # every pair served from now on records the live model
    annotator, _ = store.add_annotator("after")
    pair = store.served_pair(Collector(store).next_pair(annotator["id"]).served_pair_id)
    assert pair["model_version"] == "v2"
    assert trainer.load_current() is not None
    store.close()


def test_both_bad_is_counted_not_ranked_and_ties_are_half(db):
    store = Store(db)
    collector = Collector(store, seed=0)
    a, _ = store.add_annotator("x")
    for choice in ("left", "right", "tie", "both_bad"):
        collector.submit(a["id"], collector.next_pair(a["id"]).served_pair_id, choice)
    data, both_bad = build_pair_data(store.training_rows(), HashEmbedder().embed)
    assert both_bad == 1 and sorted(data.target.tolist()) == [0.0, 0.5, 1.0]
    store.close()


@pytest.mark.slow
def test_killed_training_leaves_old_model_serving_and_labels_intact(db, tmp_path):
    models = tmp_path / "models"
    store = Store(db)
    simulate(store, labels=40, seed=1)
    OnlineTrainer(partial(Store, db), models, FAST, HashEmbedder()).train_once()
    simulate(store, labels=40, seed=2)
    labels_before = store.labels()
    script = textwrap.dedent(f"""
        from functools import partial
        from collector.store import Store
        from models.embeddings import BagOfWordsEmbedder
        from models.online import OnlineTrainer, TrainingConfig
        from models.reward import ModelConfig
        config = TrainingConfig(min_labels=10, params=ModelConfig(epochs=100000, ensemble=2, hidden=16))
        OnlineTrainer(partial(Store, {str(db)!r}), {str(models)!r}, config, BagOfWordsEmbedder()).train_once(
            on_start=lambda: print("training started", flush=True))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "training started"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert (models / "CURRENT").read_text() == "v1"
    assert not (models / "v2").exists()
    assert store.labels() == labels_before
    assert store.get_meta("model_version") == "v1"
    # the next run recovers and publishes
    assert OnlineTrainer(partial(Store, db), models, FAST, HashEmbedder()).train_once()["version"] == "v2"
    store.close()


def test_training_config_file_loads_and_bad_values_name_the_field(tmp_path):
    from acquisition.core.errors import ConfigError
    from models.online import load_training_config

    config = load_training_config(str(REPOSITORY / "models" / "examples" / "training.toml"))
    assert config.model == "bt_mlp" and config.params.ensemble == 4
    bad = tmp_path / "t.toml"
    bad.write_text("[params]\nepochs = 'many'\n")
    with pytest.raises(ConfigError, match=r"t.toml.params.epochs: expected an integer"):
        load_training_config(str(bad))


def test_worker_embeds_new_pool_texts_and_edited_copies_once(db, tmp_path):
    calls = []

    class Recording(HashEmbedder):
        def embed(self, texts):
            calls.append(list(texts))
            return super().embed(texts)

    trainer = OnlineTrainer(partial(Store, db), tmp_path / "models", FAST, Recording())
    store = Store(db)
    first = trainer.embed_pending(store)
    assert first == store.counts()["prompts"] + store.counts()["base_responses"]
    assert trainer.embed_pending(store) == 0
    simulate(store, labels=5, seed=0)  # serving creates edited copies
    assert trainer.embed_pending(store) == store.counts()["edited_responses"] > 0
    store.close()


def test_active_policy_serves_from_the_live_models_disagreement(db, tmp_path):
    store = Store(db)
    simulate(store, labels=40, seed=1)
    import dataclasses

    trainer = OnlineTrainer(partial(Store, db), Path(db).parent / "models",
                            dataclasses.replace(FAST, acquisition="disagreement"), HashEmbedder())
    version = trainer.train_once()["version"]
    scores = Checkpoints.for_database(db).acquisition_scores(version)
    assert scores is not None and len(scores.scores) > 0
    store.activate_policy("active", {"uniform_share": 0.2})
    annotator, _ = store.add_annotator("active-user")
    pair = store.served_pair(Collector(store, seed=0).next_pair(annotator["id"]).served_pair_id)
    assert pair["policy_name"] == "active" and pair["model_version"] == version
    assert pair["acquisition_score"] is not None and 0 < pair["propensity_score"] <= 1
    store.close()


@pytest.mark.parametrize("acquisition", ["eubo", "bald"])
def test_worker_fits_the_design_space_gp_for_the_active_policy(db, acquisition):
    store = Store(db)
    store.activate_policy("active", {"attributes": ["bold", "emoji", "hedging"], "uniform_share": 0.3,
                                     "design_acquisition": acquisition})
    simulate(store, labels=60, seed=3)
    models = Path(db).parent / "models"
    version = OnlineTrainer(partial(Store, db), models, FAST, HashEmbedder()).train_once()["version"]
    design = Checkpoints(models).design_scores(version)
    assert design.attributes == ["bold", "emoji", "hedging"] and design.scores.shape == (28,)
    assert design.acquisition == acquisition
    annotator, _ = store.add_annotator("eubo-user")
    collector = Collector(store, seed=0)
    policy, _ = collector.active_policy()
    assert policy.design_weight is not None
    pair = store.served_pair(collector.next_pair(annotator["id"]).served_pair_id)
    assert pair["model_version"] == version and 0 < pair["propensity_score"] <= 1
    store.close()


def test_one_trainer_per_database(db, tmp_path):
    first = OnlineTrainer(partial(Store, db), tmp_path / "models", FAST, HashEmbedder())
    second = OnlineTrainer(partial(Store, db), tmp_path / "models", FAST, HashEmbedder())
    said = []
    with first.trainer_lock(wait=False) as locked:
        assert locked
        with second.trainer_lock(wait=False) as other:
            assert not other
        second.run(threading.Event(), poll_seconds=0.01, log=said.append)  # returns at once
    assert said and "another trainer already publishes" in said[0]
    with second.trainer_lock(wait=False) as locked:
        assert locked  # free again once the first let go


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


@pytest.mark.slow
def test_the_apps_worker_exits_when_the_app_is_killed(db, tmp_path):
    """The app starts the trainer as a child process; a SIGKILLed app (no clean-up runs) must
    not leave it training on."""
    app = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from collector.jobs.worker import spawn_worker
        print(spawn_worker({str(db)!r}, start_delay=0).pid, flush=True)
        time.sleep(120)
        """)], stdout=subprocess.PIPE, text=True)
    worker = int(app.stdout.readline())
    deadline = time.time() + 60
    while time.time() < deadline and "trainer.lock" not in {p.name for p in (db.parent / "models").glob("*")}:
        time.sleep(0.2)  # the worker has started and taken the trainer lock
    assert _alive(worker)
    app.send_signal(signal.SIGKILL)
    app.wait()
    deadline = time.time() + 20
    while time.time() < deadline and _alive(worker):
        time.sleep(0.2)
    assert not _alive(worker)


def test_multihead_can_take_the_shown_objective_as_its_head(db):
    from collector.serving.study import update_study_config

    store = Store(db)
    update_study_config(store, {"randomise_objective": "pair", "objectives": ["Be helpful", "Be harmless"]})
    simulate(store, labels=60, seed=4)
    rows = store.training_rows()
    assert {r["objective"] for r in rows} == {"Be helpful", "Be harmless"}
    by_group, _ = build_pair_data(rows, HashEmbedder().embed)
    by_objective, _ = build_pair_data(rows, HashEmbedder().embed, head="objective")
    assert by_group.group_names == ["default"] and by_objective.group_names == ["Be harmless", "Be helpful"]
    config = TrainingConfig(model="multihead", head="objective", min_labels=10, eval_responses=0,
                            params=ModelConfig(hidden=8, ensemble=1, epochs=2))
    from models.checkpoints import Checkpoints

    trainer = OnlineTrainer(partial(Store, db), Checkpoints(Path(db).parent / "m"), config, HashEmbedder())
    assert trainer.train_once()["version"] == "v1"
    assert trainer.load_current().group_names == ["Be harmless", "Be helpful"]
    with pytest.raises(Exception, match="head"):
        TrainingConfig(head="colour").validate()
    store.close()


def test_bald_diversity_scores_are_softrank_weights_that_favour_unlabelled_prompts(db):
    import dataclasses

    store = Store(db)
    simulate(store, labels=40, seed=1)
    labelled = {r["prompt_id"] for r in store.training_rows()}
    config = dataclasses.replace(FAST, acquisition="bald", diversity_weight=5.0)
    trainer = OnlineTrainer(partial(Store, db), Path(db).parent / "models", config, HashEmbedder())
    version = trainer.train_once()["version"]
    scores = Checkpoints.for_database(db).acquisition_scores(version).scores
    weights = np.array(list(scores.values()))
    assert (weights > 0).all() and weights.sum() == pytest.approx(1.0)
    fresh = [w for (p, _, _), w in scores.items() if p not in labelled]
    seen = [w for (p, _, _), w in scores.items() if p in labelled]
    assert fresh and seen and np.median(fresh) > np.median(seen)  # diversity: unlabelled prompts first
    store.activate_policy("active", {"uniform_share": 0.1})
    annotator, _ = store.add_annotator("bal-pm")
    pair = store.served_pair(Collector(store, seed=0).next_pair(annotator["id"]).served_pair_id)
    assert pair["model_version"] == version and 0 < pair["propensity_score"] <= 1
    with pytest.raises(Exception, match="acquisition: must be one of bald, disagreement"):
        TrainingConfig(acquisition="epig").validate()
    store.close()


def test_the_worker_reports_embedding_progress_where_the_researcher_page_reads_it(db):
    import json as _json

    from collector.app.researcher import embedding_status

    seen = []

    class SlowEmbedder(HashEmbedder):
        def embed(self, texts, progress=False, on_progress=None):
            for done in range(0, len(texts), 10):
                if on_progress:
                    on_progress(min(done + 10, len(texts)), len(texts), 1.0 + done)
                    seen.append(embedding_status(store))
            return super().embed(texts)

    store = Store(db)
    trainer = OnlineTrainer(partial(Store, db), Path(db).parent / "models", FAST, SlowEmbedder())
    n = trainer.embed_pending(store)
    assert n > 10
    state = _json.loads(store.get_meta("embedding_progress"))
    assert state["done"] == state["total"] == n
    assert embedding_status(store) is None  # done: nothing to show
    assert seen[0] is not None and seen[0][1].startswith("embedding 10/")  # while it ran
    assert "ETA" in seen[0][1] and 0 < seen[0][0] < 1
    store.close()


def test_a_backlog_is_embedded_a_chunk_at_a_time_with_progress_over_the_whole_of_it(db, tmp_path):
    class Reporting(HashEmbedder):
        def embed(self, texts, on_progress=None):
            if on_progress:
                on_progress(len(texts), len(texts), 0.1)
            return super().embed(texts)

    store = Store(db)
    trainer = OnlineTrainer(partial(Store, db), tmp_path / "models", FAST, Reporting())
    backlog = store.pending_texts()
    assert backlog > 30
    done = 0
    while (n := trainer.embed_pending(store, limit=10)):
        assert n <= 10
        done += n
        state = json.loads(store.get_meta("embedding_progress"))
        assert state["total"] == backlog and state["done"] == done  # one backlog, not a restart per chunk
        assert store.pending_texts() == backlog - done
    assert done == backlog and store.pending_texts() == 0
    store.close()


def test_a_due_retrain_does_not_wait_behind_an_embedding_backlog(db, tmp_path, monkeypatch):
    """After a large import the worker embeds one chunk, then retrains if a retrain is due,
    then goes on with the backlog: the model is not hours stale while the pool is embedded."""
    import models.online as online

    monkeypatch.setattr(online, "EMBED_CHUNK", 5)
    store = Store(db)
    simulate(store, labels=40, seed=1)
    store.set_meta("embedded_prompt_id", "0")  # as after an import that did not embed
    store.set_meta("embedded_response_id", "0")
    backlog = store.pending_texts()
    stop, seen = threading.Event(), []

    class Recording(OnlineTrainer):
        def train_once(self, on_start=None):
            check = Store(db)
            seen.append(check.pending_texts())
            check.close()
            stop.set()
            return {"version": "v0", "heldout_accuracy": 0.5, "test_pairs": 0, "train_seconds": 0}

    trainer = Recording(partial(Store, db), tmp_path / "models", FAST, HashEmbedder())
    worker = threading.Thread(target=trainer._poll, args=(stop, 60.0, lambda *_: None), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert seen and seen[0] == backlog - 5  # retrained after the first chunk, the rest still pending
    stop.clear()
    store.close()
