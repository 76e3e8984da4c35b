import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before torch loads: two torch pools on two cores fight
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # one reward-model test took 6 s with 1 thread, 36 s with 2

from acquisition.core.config import to_dict  # noqa: E402
from acquisition.policies import RandomisedAttributesConfig  # noqa: E402
from collector.serving.service import Collector  # noqa: E402
from collector.store import Store  # noqa: E402
from collector.store.create import load_demo_pool  # noqa: E402


@pytest.fixture
def store():
    """In-memory database with the demo pool and the default randomised policy."""
    s = Store(":memory:")
    s.add_pool(load_demo_pool(), source="demo")
    s.activate_policy("randomised_attributes", to_dict(RandomisedAttributesConfig()))
    yield s
    s.close()


@pytest.fixture
def collector(store):
    return Collector(store, seed=1)


@pytest.fixture
def annotator(store):
    row, _token = store.add_annotator("ann", group="g1")
    return row


@pytest.fixture(autouse=True)
def _no_background_trainer(monkeypatch):
    """AppTests run the page in this process: keep the app's training thread out of them."""
    monkeypatch.setenv("DECONFOUND_WORKER", "0")
