"""Publishing a model is one atomic step: a SIGKILL at any step leaves the pointer, the database
and the version folders agreeing (after the next trainer's recovery), and the next run publishes
the next number; two trainers at once never collide."""

import os
import subprocess
import sys
import textwrap
from functools import partial

import pytest

from collector.jobs.simulate import simulate
from collector.store import Store
from collector.store.create import init_db
from models.checkpoints import CURRENT, Checkpoints
from models.online import OnlineTrainer, TrainingConfig
from models.reward import ModelConfig

FAST = TrainingConfig(retrain_every=30, min_labels=10, eval_responses=0,
                      params=ModelConfig(hidden=8, ensemble=1, epochs=2))

TRAIN = """
import os, signal, sys
from functools import partial
from collector.store import Store
from models.checkpoints import Checkpoints
from models.embeddings import BagOfWordsEmbedder
from models.online import OnlineTrainer, TrainingConfig
from models.reward import ModelConfig
from models.online import set_torch_threads
set_torch_threads(1)
kill_at = {kill_at!r}
if kill_at:
    Checkpoints.after_step = staticmethod(
        lambda step: os.kill(os.getpid(), signal.SIGKILL) if step == kill_at else None)
config = TrainingConfig(min_labels=10, eval_responses=0, params=ModelConfig(hidden=8, ensemble=1, epochs=2))
store = Store({db!r})
trainer = OnlineTrainer(partial(Store, {db!r}), store.checkpoints(), config, BagOfWordsEmbedder())
store.close()
print(trainer.train_once()["version"], flush=True)
"""


def train_in_subprocess(db, kill_at=None) -> subprocess.Popen:
    script = textwrap.dedent(TRAIN.format(db=str(db), kill_at=kill_at))
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def agreement(store: Store) -> tuple[str | None, str | None, list[str], list[str]]:
    """The database's version, the pointer, the version folders, and any left-overs."""
    folder = store.checkpoints().folder
    pointer = (folder / CURRENT).read_text().strip() if (folder / CURRENT).exists() else None
    leftovers = sorted(p.name for p in folder.iterdir() if p.name.startswith("."))
    return store.get_meta("model_version"), pointer, Checkpoints(folder).versions(), leftovers


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "d.db"
    init_db(path, demo=True)
    store = Store(path)
    simulate(store, labels=40, seed=1)
    store.close()
    return path


@pytest.mark.slow
@pytest.mark.parametrize("step", ["written", "renamed", "committed", "pointed"])
def test_a_kill_at_each_publishing_step_leaves_everything_agreeing(db, step):
    first = train_in_subprocess(db)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert out.strip() == "v1"
    store = Store(db)
    labels_before = store.counts()["labels"]
    killed = train_in_subprocess(db, kill_at=step)
    killed.communicate(timeout=300)
    assert killed.returncode == -9  # SIGKILL at that step
    live, pointer, versions, leftovers = agreement(store)
    # a reader (serving, the dashboard, exports) reads the database: v1 until the commit, v2 after
    assert live == ("v2" if step in ("committed", "pointed") else "v1")
    trainer = OnlineTrainer(partial(Store, db), store.checkpoints(), FAST, None)
    with trainer.trainer_lock(wait=True):
        trainer.recover()
    live, pointer, versions, leftovers = agreement(store)
    assert pointer == live and versions[-1] == live and leftovers == []
    assert store.counts()["labels"] == labels_before
    nxt = train_in_subprocess(db)
    out, err = nxt.communicate(timeout=300)
    assert nxt.returncode == 0, err
    expected = f"v{int(live[1:]) + 1}"
    assert out.strip() == expected and agreement(store)[:3] == (expected, expected, versions + [expected])
    store.close()


@pytest.mark.slow
def test_two_trainers_started_together_publish_distinct_versions(db):
    procs = [train_in_subprocess(db) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    assert sorted(out.strip() for out, _ in results) == ["v1", "v2"]
    store = Store(db)
    assert agreement(store) == ("v2", "v2", ["v1", "v2"], [])
    store.close()


def test_checkpoints_are_configured_and_never_the_models_package(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("")  # a database in the repository root
    assert Checkpoints.for_database(tmp_path / "x.db").folder == tmp_path / "x.models"
    data = tmp_path / "data"
    data.mkdir()
    assert Checkpoints.for_database(data / "deconfound.db").folder == data / "models"
    result = init_db(data / "other.db", checkpoints="runs/other")
    assert result["checkpoints"] == str(data / "runs" / "other")
    assert Store(data / "other.db").checkpoints().folder == data / "runs" / "other"
