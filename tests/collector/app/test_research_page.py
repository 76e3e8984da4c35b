
import pytest
from streamlit.testing.v1 import AppTest

from collector.app import REPOSITORY
from collector.store import Store
from collector.store.create import init_db

PAGE = REPOSITORY / "collector" / "app" / "pages" / "research.py"


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
    at.button(key="research_enter").click().run()
    assert not at.exception
    return at


def test_wrong_password_is_refused(research_db):
    at = AppTest.from_file(str(PAGE), default_timeout=30).run()
    at.text_input(key="research_password").input("guess")
    at.button(key="research_enter").click().run()
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
    area = next(t for t in at.text_area if str(t.key).startswith("research_text_"))
    area.input('name = "randomised_attributes"\n[config]\nprobability = 1.5\n').run()
    at.button(key="research_activate").click().run()
    assert "config.probability" in at.error[0].value
    store = Store(research_db)
    assert store.active_policy()["version"] == 1
    store.close()


def test_balance_tables_show_once_there_are_labels_and_follow_new_labels(research_db):
    from collector.jobs.simulate import simulate

    at = _logged_in()
    assert any("No labels with a winner yet" in i.value for i in at.info)
    store = Store(research_db)
    store.activate_policy("mixture", {"components": [
        {"name": "observational", "weight": 0.5},
        {"name": "randomised_attributes", "weight": 0.5},
    ]})
    simulate(store, labels=60, seed=1)
    at.run()  # new labels: the cached tables are rebuilt
    assert not at.exception and not at.info
    chosen_rejected = at.dataframe[0].value
    assert set(chosen_rejected["attribute"]) >= {"bold", "emoji"} and (chosen_rejected["n"] > 0).any()
    assert len(at.dataframe) == 3  # chosen/rejected, left/right, arms vs the observational arm
    store.close()


def test_study_settings_are_edited_on_the_page_and_audited(research_db):
    at = _logged_in()
    at.number_input(key="research_study_quota").set_value(25)
    at.text_input(key="research_study_objective").input("Judge which response is more harmless")
    at.text_area(key="research_study_groups").input("crowd = Judge which response is more helpful")
    at.button(key="research_study_save").click().run()
    assert not at.exception and "Saved study settings, version 1." in [s.value for s in at.success]
    s = Store(research_db)
    try:
        from collector.serving.study import study_config

        config = study_config(s)
        log = s.audit_log()
    finally:
        s.close()
    assert config.quota == 25 and config.group_objectives == {"crowd": "Judge which response is more helpful"}
    assert (log[0]["researcher"], log[0]["action"]) == ("shared-password", "study changed")
    at.text_area(key="research_study_groups").input("no equals sign here")
    at.button(key="research_study_save").click().run()
    assert "line 1" in at.error[0].value


def test_a_randomised_objective_and_crowd_entry_are_set_on_the_page(research_db):
    at = _logged_in()
    at.selectbox(key="research_study_randomise").set_value("pair")
    at.text_area(key="research_study_objectives").input("0.7 | Judge helpfulness\n0.3 | Judge harmlessness")
    at.selectbox(key="research_study_crowd").set_value("prolific")
    at.button(key="research_study_save").click().run()
    assert not at.exception and at.success
    from collector.serving.study import study_config

    s = Store(research_db)
    config = study_config(s)
    s.close()
    assert config.randomise_objective == "pair" and config.objectives == ["Judge helpfulness", "Judge harmlessness"]
    assert config.objective_probabilities == [0.7, 0.3] and config.crowd_entry == "prolific"
    at.text_area(key="research_study_objectives").input("0.7 | A\n0.7 | B")
    at.button(key="research_study_save").click().run()
    assert "must sum to 1" in at.error[0].value


def test_the_editor_audit_runs_on_the_pool(research_db):
    at = _logged_in()
    at.number_input(key="research_audit_sample").set_value(40).run()
    at.button(key="research_audit").click().run()
    assert not at.exception
    table = at.dataframe[0].value  # the only table: no labels yet, so no balance tables
    assert set(table.editor) >= {"bold", "list_format", "hedging"} and table.artefacts.eq(0).all()
    assert table.applies.between(0, 1).all() and table.passes.dtype == bool


def test_the_suspicion_probe_is_a_study_setting(research_db):
    from collector.serving.study import study_config

    at = _logged_in()
    at.number_input(key="research_study_probe").set_value(20)
    at.button(key="research_study_save").click().run()
    assert not at.exception and "Saved study settings" in at.success[0].value
    store = Store(research_db)
    assert study_config(store).suspicion_probe_after == 20
    store.close()


def test_the_plan_panel_gives_labels_per_attribute_for_the_active_policy(research_db):
    from acquisition.planning import Design, labels_needed

    at = _logged_in()
    at.number_input(key="research_plan_effect").set_value(0.1)
    at.number_input(key="research_plan_budget").set_value(1000)
    at.button(key="research_plan").click().run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert set(table.attribute) == {"bold", "list_format"} and set(table.p_on_source) == {"policy randomised_attributes"}
    # a fresh study: no ties or skips seen yet, so the defaults; no clustering seen yet
    share = table.randomised_share.iloc[0]
    assert 0 < share < 1  # where the editor applies to both responses, read from the pool
    assert table.labels_needed.iloc[0] == labels_needed(0.1, Design(p_on=0.5, tie_rate=0.1, drop_rate=0.05,
                                                                     randomised_share=share))
    assert (table.detectable_effect > 0).all()
