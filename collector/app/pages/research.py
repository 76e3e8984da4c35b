"""Researcher page: configure, preview and activate the acquisition policy; watch balance."""

import streamlit as st

from acquisition.core.errors import DeconfoundError
from collector.app.researcher import (
    activate_policy_text,
    active_policy_summary,
    balance_tables,
    example_policies,
    preview_policy,
    upload_text,
)
from collector.app.state import audit, get_collector, require_researcher

collector = get_collector()
store = collector.store
st.title("Researcher")

require_researcher("research")

counts = store.counts()
cols = st.columns(4)
for col, key in zip(cols, ("prompts", "annotators", "served_pairs", "labels")):
    col.metric(key.replace("_", " ").capitalize(), counts[key])

summary = active_policy_summary(store)
st.subheader("Active policy")
if summary["policy"]:
    st.markdown(f"**{summary['policy']}**, version {summary['version']}")
    st.code(summary["config"], language="json")
else:
    st.warning("No active policy.")

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
        row = activate_policy_text(store, text)
        audit("policy activated", {"policy": row["name"], "version": row["version"]})
        st.success(f"Active: {row['name']} version {row['version']}. The next served pair uses it.")
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
