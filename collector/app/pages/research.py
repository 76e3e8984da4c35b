"""Researcher page: configure, preview and activate the acquisition policy; watch balance."""

import streamlit as st

from acquisition.core.errors import DeconfoundError
from collector.app.researcher import (
    activate_policy_text,
    active_policy_summary,
    balance_tables,
    editor_audit_table,
    embedding_status,
    example_policies,
    parse_group_objectives,
    parse_objective_lines,
    plan_table,
    policy_build_message,
    preview_policy,
    upload_text,
)
from collector.app.state import audit, get_collector, require_researcher
from collector.serving.study import update_study_config

collector = get_collector()
store = collector.store
st.title("Researcher")

require_researcher("research")

embedding = embedding_status(store)
if embedding is not None:  # the worker is embedding new texts: scores and models wait for them
    st.progress(embedding[0], text=embedding[1])

counts = store.counts()
cols = st.columns(4)
for col, key in zip(cols, ("prompts", "annotators", "served_pairs", "labels")):
    col.metric(key.replace("_", " ").capitalize(), counts[key])

summary = active_policy_summary(store)
st.subheader("Active policy")
if (failed := policy_build_message(store)) is not None:
    st.error(failed, icon=":material/error:")
if summary["policy"]:
    st.markdown(f"**{summary['policy']}**, version {summary['version']}")
    st.code(summary["config"], language="json")
else:
    st.warning("No active policy.")

st.subheader("Study")
study, version = collector.study()
st.caption(f"Version {version}. What annotators are told and how many labels each gives; the next "
           "served pair records the new version and the objective it is shown with.")
with st.form("research_study"):
    title = st.text_input("Title", value=study.title, key="research_study_title")
    objective = st.text_input("Objective shown above every pair (empty: none)", value=study.objective,
                              key="research_study_objective",
                              placeholder="Judge which response is more harmless")
    groups = st.text_area("Objective per annotator group (one `group = objective` per line)",
                          value="\n".join(f"{g} = {o}" for g, o in study.group_objectives.items()),
                          key="research_study_groups")
    guidelines = st.text_area("Guidelines (Markdown)", value=study.guidelines, height=220,
                              key="research_study_guidelines")
    left, mid, right = st.columns([1, 2, 1])
    quota = left.number_input("Quota per annotator (0: none)", min_value=0, step=1, value=study.quota,
                              key="research_study_quota")
    message = mid.text_input("Completion message", value=study.completion_message, key="research_study_message")
    code = right.text_input("Completion code", value=study.completion_code, key="research_study_code")
    left, right = st.columns([1, 3])
    entries: dict[str, str] = {"": "token links only", "prolific": "Prolific", "participant": "?participant=ID"}
    crowd = left.selectbox("Crowd entry", list(entries), index=list(entries).index(study.crowd_entry),
                           format_func=lambda k: entries[k], key="research_study_crowd")
    completion_url = right.text_input("Completion URL (where a finished crowd worker is sent)",
                                      value=study.completion_url, key="research_study_completion_url")
    probe = st.number_input("Suspicion probe: after this many labels, ask each annotator once whether any "
                            "response looked edited (0: never)", min_value=0, step=1,
                            value=study.suspicion_probe_after, key="research_study_probe")
    left, right = st.columns([1, 3])
    modes: dict[str, str] = {"": "fixed (above)", "pair": "randomised per pair", "annotator": "randomised per annotator"}
    randomise = left.selectbox("Objective", list(modes), index=list(modes).index(study.randomise_objective),
                               format_func=lambda k: modes[k], key="research_study_randomise")
    drawn = right.text_area("Objectives to randomise (one per line; `0.3 | text` gives a probability, "
                            "else equal)", key="research_study_objectives",
                            value="\n".join(f"{p:g} | {o}" if study.objective_probabilities else o
                                            for o, p in zip(study.objectives, study.probabilities)))
    if st.form_submit_button("Save study settings", key="research_study_save"):
        try:
            objectives, probabilities = parse_objective_lines(drawn)
            _, saved = update_study_config(store, {
                "title": title, "objective": objective, "group_objectives": parse_group_objectives(groups),
                "guidelines": guidelines, "quota": int(quota), "completion_message": message,
                "completion_code": code, "crowd_entry": crowd, "completion_url": completion_url,
                "randomise_objective": randomise, "objectives": objectives,
                "objective_probabilities": probabilities, "suspicion_probe_after": int(probe),
            })
            audit("study changed", {"version": saved})
            st.success(f"Saved study settings, version {saved}.")
        except DeconfoundError as exc:
            st.error(str(exc))

st.subheader("Change the policy")
examples = example_policies()
start = st.selectbox("Start from an example", list(examples), key="research_example")
uploaded = st.file_uploader("...or upload a policy file (TOML)", type=["toml"], key="research_upload")
initial = examples[start]
if uploaded is not None:
    try:
        initial = upload_text(uploaded.getvalue(), uploaded.name)
    except DeconfoundError as exc:
        st.error(str(exc))
text = st.text_area("Policy file", value=initial, height=260, key=f"research_text_{start}_{uploaded is not None}")

left, right = st.columns(2)
if left.button("Validate and preview", key="research_preview"):
    try:
        st.dataframe(preview_policy(store, text), hide_index=True)
        st.success("Valid. These are pairs it would serve (nothing was stored).")
    except DeconfoundError as exc:
        st.error(str(exc))
if right.button("Activate", type="primary", key="research_activate"):
    try:
        row = activate_policy_text(collector, text)
        audit("policy activated", {"policy": row["name"], "version": row["version"]})
        st.success(f"Active: {row['name']} version {row['version']}. The next served pair uses it.")
    except DeconfoundError as exc:
        st.error(str(exc))

st.subheader("Editor audit")
st.caption("Before randomising an attribute, check that its edits are the attribute it names on this pool: "
           "where it applies, template reuse (target under 5%), artefacts (0), meaning kept (cosine at least 0.95) "
           "and how well a classifier tells its edits from natural texts (AUC at most 0.65). See docs/policies.md.")
left, mid, right = st.columns([1, 1, 2])
sample = left.number_input("Responses to audit", min_value=1, value=300, step=50, key="research_audit_sample")
meaning = mid.checkbox("Meaning check (embeddings, slower)", value=False, key="research_audit_meaning")
if right.button("Audit the editors on this pool", key="research_audit"):
    try:
        with st.spinner("Auditing the editors..."):
            st.dataframe(editor_audit_table(store, int(sample), meaning), hide_index=True)
    except DeconfoundError as exc:
        st.error(str(exc))

st.subheader("Plan")
st.caption("Labels each attribute's effect (AMCE) needs to be detected, and the smallest effect a budget detects, "
           "for the active policy, with ties, skips, annotators and their clustering read from the study so far "
           "(`deconfound plan` prints the same; docs/researcher.md). Power is for a test at the planned size: a "
           "study stopped by its confidence sequence needs about 1.5-1.8 times as many.")
c1, c2, c3, c4 = st.columns(4)
plan_effect = c1.number_input("Effect to detect (AMCE)", min_value=0.005, max_value=0.9, value=0.05, step=0.01,
                              format="%.3f", key="research_plan_effect")
plan_power = c2.number_input("Power", min_value=0.5, max_value=0.99, value=0.8, step=0.05, key="research_plan_power")
plan_budget = c3.number_input("Budget (labels)", min_value=1, value=2000, step=500, key="research_plan_budget")
if c4.button("Plan", key="research_plan"):
    try:
        st.dataframe(plan_table(store, float(plan_effect), int(plan_budget), float(plan_power)), hide_index=True)
    except DeconfoundError as exc:
        st.error(str(exc))

st.subheader("Balance")
st.caption("Standardised mean difference of each attribute between chosen and rejected responses; |SMD| < 0.1 is balanced.")


@st.cache_data(ttl=300, max_entries=4, show_spinner="Computing balance...")
def _balance(path: str, labels: int, served: int):
    """Recomputed only when labels or served pairs change (the page reruns on every click)."""
    return balance_tables(get_collector().store)


tables = _balance(store.path, counts["labels"], counts["served_pairs"])
if tables is not None:
    st.dataframe(tables["chosen_rejected"], hide_index=True)
    st.caption("Left vs right SMD within annotator groups and prompt types.")
    st.dataframe(tables["left_right"])
    arms = tables["arms"]
    if len(arms):
        st.caption("SMD of the responses each arm shows against the reference (observational) arm, "
                   "within annotator groups and prompt types.")
        st.dataframe(arms.pivot_table(index=["arm", "covariate"], columns="stratum", values="smd"))
else:
    st.info("No labels with a winner yet.")
