import pytest

from acquisition.config import to_dict
from acquisition.policies import RandomisedAttributesConfig
from collector.serving import Collector
from collector.setup import load_demo_pool
from collector.store import Store


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
