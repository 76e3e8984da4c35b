"""The dashboard page under AppTest, on a database with simulated labels and two checkpoints."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from collector.app import REPOSITORY
from collector.jobs.simulate import SimulatedAnnotatorConfig, simulate
from collector.serving.qc_settings import update_qc_config
from collector.store import Store
from collector.store.create import init_db

PAGE = REPOSITORY / "collector" / "app" / "pages" / "dashboard.py"


@pytest.fixture(scope="module")
def labelled_db(tmp_path_factory):
    """300 labels from two groups, one of which likes emoji, each pair labelled by all four annotators
    (quality control's overlap), and two published checkpoints."""
    db = tmp_path_factory.mktemp("dash") / "d.db"
    init_db(db, demo=True)
    store = Store(db)
    update_qc_config(store, {"overlap": 4})
    store.activate_policy("randomised_attributes", {"attributes": ["list_format", "bold", "emoji"]})  # emoji: not a default
    simulate(store, labels=300, annotators=4, groups=["fans", "neutral"], seed=1,
             config=SimulatedAnnotatorConfig(group_effects={"fans": {"emoji": 1.5}}))
    store.close()
    for version, labels in ((1, 150), (2, 300)):
        folder = db.parent / "models" / f"v{version}"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({
            "labels": labels, "test_pairs": labels // 5, "heldout_accuracy": 0.7 + version / 100,
            "ood_accuracy": 0.5 + version / 100, "ood_pairs": 12, "pearson_reward_length": 0.2,
            "sensitivity_emoji": 0.1}))
    return db


@pytest.fixture
def page_env(labelled_db, monkeypatch):
    monkeypatch.setenv("DECONFOUND_DB", str(labelled_db))
    monkeypatch.setenv("DECONFOUND_RESEARCHER_PASSWORD", "s3cret")
    return labelled_db


def _figure(at, index: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def _logged_in() -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=60).run()
    at.text_input(key="dashboard_password").input("s3cret")
    at.button(key="dashboard_enter").click().run()
    assert not at.exception
    return at


def test_wrong_password_shows_nothing(page_env):
    at = AppTest.from_file(str(PAGE), default_timeout=60).run()
    assert not at.get("plotly_chart")
    at.text_input(key="dashboard_password").input("guess")
    at.button(key="dashboard_enter").click().run()
    assert "Wrong researcher password" in at.error[0].value
    assert not at.get("plotly_chart") and not at.metric


def test_locked_without_a_configured_password(page_env, monkeypatch):
    monkeypatch.delenv("DECONFOUND_RESEARCHER_PASSWORD")
    at = AppTest.from_file(str(PAGE), default_timeout=60).run()
    at.text_input(key="dashboard_password").input("anything")
    at.button(key="dashboard_enter").click().run()
    assert "locked" in at.error[0].value and not at.get("plotly_chart")


def test_progress_opens_first_with_the_counts(page_env):
    at = _logged_in()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Labels"] == "300" and metrics["Annotators"] == "4"
    progress = _figure(at)
    assert progress["layout"]["title"]["text"] == "Collection progress"
    assert {t["name"] for t in progress["data"] if t["type"] == "scatter"} == {"fans", "neutral"}
    summary = at.dataframe[0].value.set_index("annotator_group")
    assert summary.loc["all", "labels"] == 300


def test_effects_tab_shows_amce_with_ns(page_env):
    at = _logged_in()
    at.session_state["dashboard_tab"] = "Effects"
    at.run()
    assert not at.exception
    effects = _figure(at)
    assert effects["layout"]["title"]["text"].startswith("Attribute effects (AMCE")
    assert any(t["name"].startswith("annotator group: fans (n=") for t in effects["data"])
    table = at.dataframe[0].value
    fans_emoji = table[(table["cell"] == "fans") & (table["attribute"] == "emoji")].iloc[0]
    assert 100 < fans_emoji["n_labels"] <= 150 and fans_emoji["ci_high"] > 0  # the pairs where emoji applies to both
    assert set(table["scope"]) == {"overall", "annotator group", "prompt type"}


@pytest.mark.parametrize("tab, title", [
    ("Balance and overlap", "Overlap: labelled responses"),
    ("Model", "Reward model per checkpoint"),
    ("Agreement", "Agreement on items labelled by several annotators"),
])
def test_every_tab_renders_with_data(page_env, tab, title):
    at = _logged_in()
    at.session_state["dashboard_tab"] = tab
    at.run()
    assert not at.exception
    titles = [_figure(at, i)["layout"]["title"]["text"] for i in range(len(at.get("plotly_chart")))]
    assert any(t.startswith(title) for t in titles), titles
    if tab == "Model":
        assert at.dataframe[0].value["version"].tolist() == [1, 2]
    if tab == "Agreement":
        table = at.dataframe[0].value.set_index("annotator_group")
        assert table.loc["fans", "items"] > 10 and -1 <= table.loc["fans", "krippendorff_alpha"] <= 1


def test_quality_tab_lists_every_annotator(page_env):
    at = _logged_in()
    at.session_state["dashboard_tab"] = "Quality"
    at.run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 4
