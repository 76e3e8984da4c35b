"""Quality page (researcher): per-annotator quality, exclusions, gold pairs, the QC config."""

import streamlit as st

from acquisition.core.errors import DeconfoundError
from collector.app.state import audit, get_collector, require_researcher
from collector.io.gold import add_gold_text, gold_frame
from collector.jobs.annotator_quality import (
    annotator_quality,
    exclude_annotator,
    include_annotator,
    overlap_summary,
)
from collector.serving.qc_settings import ATTENTION_KINDS, qc_config, qc_version, update_qc_config

collector = get_collector()
store = collector.store
st.title("Quality")

require_researcher("quality")

if flash := st.session_state.pop("quality_flash", None):
    st.success(flash)

config = qc_config(store)

st.subheader("Annotators")
st.caption(
    "Gold accuracy and attention pass rate count answered checks only; a tie or both-bad answer "
    "to a check with a winner counts as wrong. Excluded annotators' labels stay in the database "
    "but leave training, effect estimates and the TRL export."
)
quality = annotator_quality(store, config)
st.dataframe(quality, hide_index=True, key="quality_table")
for row in quality[quality["warning"] != ""].itertuples():
    st.warning(f"{row.annotator} (id {row.annotator_id}): {row.warning}.")

if len(quality):
    labels = {f"{r.annotator_id} · {r.annotator}" + (" (excluded)" if r.excluded else ""): int(r.annotator_id)
              for r in quality.itertuples()}
    picked = st.selectbox("Annotator", list(labels), key="quality_annotator")
    reason = st.text_input("Reason for excluding (goes into the dataset card)", key="quality_reason")
    left, right = st.columns(2)
    if left.button("Exclude", key="quality_exclude"):
        try:
            row = exclude_annotator(store, labels[picked], reason)
            audit("annotator excluded", {"annotator": row["id"], "reason": row["excluded_reason"]})
            st.session_state["quality_flash"] = f"Excluded {row['name']}: {row['excluded_reason']}."
            st.rerun()
        except DeconfoundError as exc:
            st.error(str(exc))
    if right.button("Include again", key="quality_include"):
        try:
            row = include_annotator(store, labels[picked])
            audit("annotator included", {"annotator": row["id"]})
            st.session_state["quality_flash"] = f"{row['name']} is included again."
            st.rerun()
        except DeconfoundError as exc:
            st.error(str(exc))

st.subheader("Overlap")
summary = overlap_summary(store)
if len(summary):
    st.caption(f"Items (a regular pair and its repeats) by number of labels; the target is {config.overlap}.")
    st.dataframe(summary, hide_index=True, key="quality_overlap_table")
else:
    st.info("No pairs served yet.")

st.subheader("Quality-control settings")
st.caption(f"Version {qc_version(store)}. Changes apply to the next served pair.")
overlap = st.number_input("Overlap: annotators per pair", min_value=1, step=1, value=config.overlap,
                          key="quality_overlap")
gold_rate = st.number_input("Gold-pair rate", min_value=0.0, step=0.01, value=config.gold_rate,
                            format="%.3f", key="quality_gold_rate")
attention_rate = st.number_input("Attention-check rate", min_value=0.0, step=0.01, value=config.attention_rate,
                                 format="%.3f", key="quality_attention_rate")
attention_kinds = st.multiselect("Attention checks", list(ATTENTION_KINDS), default=config.attention_kinds,
                                 key="quality_attention_kinds")
min_gold_accuracy = st.number_input("Warn below gold accuracy", min_value=0.0, step=0.05,
                                    value=config.min_gold_accuracy, key="quality_min_gold_accuracy")
min_attention = st.number_input("Warn below attention pass rate", min_value=0.0, step=0.05,
                                value=config.min_attention_pass_rate, key="quality_min_attention")
min_checks = st.number_input("...after this many checks", min_value=1, step=1, value=config.min_checks,
                             key="quality_min_checks")
if st.button("Save settings", type="primary", key="quality_save"):
    try:
        update_qc_config(store, {
            "overlap": int(overlap), "gold_rate": float(gold_rate), "attention_rate": float(attention_rate),
            "attention_kinds": list(attention_kinds), "min_gold_accuracy": float(min_gold_accuracy),
            "min_attention_pass_rate": float(min_attention), "min_checks": int(min_checks),
        })
        audit("QC changed", {"version": qc_version(store)})
        st.session_state["quality_flash"] = f"Saved quality-control settings, version {qc_version(store)}."
        st.rerun()
    except DeconfoundError as exc:
        st.error(str(exc))

st.subheader("Gold pairs")
gold = gold_frame(store)
if len(gold):
    st.dataframe(gold, hide_index=True, key="quality_gold_table")
else:
    st.info("No gold pairs yet: upload a JSONL file with prompt, chosen, rejected (one pair per line).")
uploaded = st.file_uploader("Add gold pairs (JSONL)", type=["jsonl"], key="quality_gold_upload")
if uploaded is not None and st.button("Add gold pairs", key="quality_gold_add"):
    try:
        added, present = add_gold_text(store, uploaded.getvalue(), uploaded.name)
        audit("gold added", {"file": uploaded.name, "added": added})
        st.session_state["quality_flash"] = f"Added {added} gold pairs ({present} already present)."
        st.rerun()
    except DeconfoundError as exc:
        st.error(str(exc))
