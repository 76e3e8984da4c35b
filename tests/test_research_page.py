from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from collector.setup import init_db
from collector.store import Store

PAGE = Path(__file__).resolve().parents[1] / "collector" / "pages" / "research.py"


@pytest.fixture
def research_db(tmp_path, monkeypatch):
    db = tmp_path / "r.db"
    init_db(db, demo=True)
    monkeypatch.setenv("DECONFOUND_DB", str(db))
    monkeypatch.setenv("DECONFOUND_RESEARCHER_PASSWORD", "s3cret")
    return db


def _logged_in():
    at = AppTest.from_file(str(PAGE), default_timeout=30).run()
    at.text_input(key="research_password").input("s3cret")
    at.button[0].click().run()
    assert not at.exception
    return at


def test_wrong_password_is_refused(research_db):
    at = AppTest.from_file(str(PAGE), default_timeout=30).run()
    at.text_input(key="research_password").input("guess")
    at.button[0].click().run()
    assert "Wrong researcher password" in at.error[0].value


def test_preview_then_activate_a_policy(research_db):
    at = _logged_in()
    assert "randomised_attributes" in at.markdown[0].value
    at.selectbox(key="research_example").set_value("counterfactual_pairs").run()
    at.button(key="research_preview").click().run()
    assert not at.exception and len(at.dataframe[0].value) == 8
    assert (at.dataframe[0].value["propensity_score"] > 0).all()
    at.button(key="research_activate").click().run()
    assert "counterfactual_pairs version 2" in at.success[0].value
    store = Store(research_db)
    assert store.active_policy()["name"] == "counterfactual_pairs"
    store.close()


def test_invalid_policy_names_the_field(research_db):
    at = _logged_in()
    area = [t for t in at.text_area][0]
    area.input('name = "randomised_attributes"\n[config]\nprobability = 1.5\n').run()
    at.button(key="research_activate").click().run()
    assert "config.probability" in at.error[0].value
    store = Store(research_db)
    assert store.active_policy()["version"] == 1
    store.close()
