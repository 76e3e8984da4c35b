"""Dashboard page (researcher): progress, effects, balance and overlap, model, agreement, quality.

Data loads are cached per database and data version (label and served-pair counts, exclusions)
with a TTL, read on their own read-only connection, and refreshed by a fragment on a timer, so
the annotators' pages never wait on it. Only the open tab is computed.
"""

import streamlit as st

from collector.app import panels as dashboard
from collector.app.researcher import policy_build_message, stopping_notice
from collector.app.state import db_path, get_collector, require_researcher
from collector.io.card import suspicion_table
from collector.serving.study import study_config

REFRESH = {"off": None, "10 s": 10, "30 s": 30, "60 s": 60}
TABS = ["Progress", "Effects", "Balance and overlap", "Model", "Agreement", "Quality"]


@st.cache_resource(ttl=120, max_entries=2, show_spinner="Loading the served-pair log...")
def _pairs(path: str, version: tuple):
    """Shared, not copied, between sessions: the panels only read it."""
    return dashboard.load_pairs(path, flags=False)


@st.cache_resource(ttl=120, max_entries=2, show_spinner="Reading the edit vectors...")
def _flagged(path: str, version: tuple):
    """The log with each attribute's flags, for the tabs that need them."""
    pairs = _pairs(path, version)
    upto = int(pairs["served_pair_id"].max()) if len(pairs) else 0
    return dashboard.with_flags(pairs, dashboard.load_flags(path, upto))


@st.cache_data(ttl=120, max_entries=2, show_spinner="Estimating effects...")
def _effects(path: str, version: tuple, rope: float = 0.0):
    return dashboard.effects_table(_flagged(path, version), rope)


@st.cache_data(ttl=120, max_entries=2, show_spinner="Computing agreement...")
def _agreement(path: str, version: tuple):
    return dashboard.agreement_summary(_pairs(path, version))


@st.cache_data(ttl=300, max_entries=2, show_spinner="Computing balance on a sample...")
def _balance(path: str, version: tuple):
    return dashboard.balance_table(get_collector().store, _flagged(path, version))


collector = get_collector()
store = collector.store
st.title("Dashboard")

require_researcher("dashboard")

refresh = st.sidebar.selectbox("Refresh every", list(REFRESH), index=2, key="dashboard_refresh")


@st.fragment(run_every=REFRESH[refresh])
def panels() -> None:
    if (failed := policy_build_message(store)) is not None:
        st.error(failed, icon=":material/error:")
    path = db_path()
    version = dashboard.data_version(store)
    pairs = _pairs(path, version)
    summary = dashboard.progress_summary(pairs)
    total = summary.iloc[0]
    cols = st.columns(5)
    cols[0].metric("Labels", f"{int(total['labels']):,}")
    cols[1].metric("Annotators", int(total["annotators"]))
    cols[2].metric("Median latency", f"{total['median_latency_s']:.1f} s" if total["labels"] else "-")
    cols[3].metric("Skipped", f"{total['skip_rate']:.1%}" if total["skip_rate"] == total["skip_rate"] else "-")
    cols[4].metric("Both bad", f"{total['both_bad_rate']:.1%}" if total["labels"] else "-")

    progress, effects, balance, model, agreement, quality = st.tabs(
        TABS, key="dashboard_tab", on_change="rerun")
    with progress:
        if progress.open:
            st.plotly_chart(dashboard.build_progress_figure(pairs), key="dashboard_progress")
            st.dataframe(summary, hide_index=True)
            st.caption("Served pairs by the family each one recorded when it was drawn (quality-control pairs "
                       "under `quality_control`, a mixture's pairs under the component that drew them).")
            st.dataframe(dashboard.family_summary(pairs), hide_index=True, key="dashboard_families")
    with effects:
        if effects.open:
            st.caption(
                "Estimand: the AMCE under the study's own design (cregg's convention): P(a response is "
                "chosen | attribute on) - P(chosen | off), the other attributes at the rates the design drew "
                "them, from the randomised arms only; a difference in means within each design, weighted only "
                "where the design depended on something observed (`deconfound effects --estimand uniform` "
                "reweights to equal arms); 95% CIs clustered by pair; ties count half, both-bad labels, "
                "quality-control items and excluded annotators are left out. The treatment is the one "
                "received (read on the text served: a failed edit is off), among pairs where the "
                "attribute applies to both responses (n_labels).")
            st.caption(
                "Two intervals. The 95% CI (`ci_low`, `ci_high`, clustered by pair) holds at one sample size "
                "fixed in advance: looked at again and again and stopped at the first that excludes 0, it declares "
                "null effects non-zero far too often (27% of simulated studies looked at 20 times). The 95% "
                "confidence sequence (`cs_low`, `cs_high`) holds "
                "however often you look and whenever you stop: **it is the one that licenses stopping**. An "
                "attribute is `resolved` once its sequence excludes 0. `se_annotator` clusters by annotator "
                "(cregg's convention); the sequence uses the larger of the two.")
            table = _effects(path, version, study_config(get_collector().store).stop_rope)
            rule = stopping_notice(get_collector().store)
            if rule:
                st.info(rule, icon=":material/flag:")
            st.plotly_chart(dashboard.build_effects_figure(table), key="dashboard_effects")
            st.dataframe(table, hide_index=True)
    with balance:
        if balance.open:
            table = _balance(path, version)
            st.plotly_chart(dashboard.build_balance_figure(table), key="dashboard_balance")
            st.caption("Each arm against the reference arm (observational where there is one), within "
                       "annotator groups; attributes are read from the texts where they were not "
                       "randomised, on a seeded random sample of up to 3,000 served pairs.")
            st.dataframe(table, hide_index=True)
            st.plotly_chart(dashboard.build_overlap_figure(dashboard.overlap_counts(_flagged(path, version))),
                            key="dashboard_overlap")
    with model:
        if model.open:
            checkpoints = dashboard.load_checkpoints(get_collector().store.checkpoints())
            st.plotly_chart(dashboard.build_model_figure(checkpoints), key="dashboard_model")
            st.caption("OOD accuracy: held-out pairs whose style attributes favour the rejected "
                       "response (the spurious correlation flipped); its pair count is in the table.")
            st.dataframe(checkpoints, hide_index=True)
    with agreement:
        if agreement.open:
            table = _agreement(path, version)
            st.plotly_chart(dashboard.build_agreement_figure(table), key="dashboard_agreement")
            st.caption("An item is the same unordered pair of response rows; a choice is the response "
                       "row chosen (or tie / both bad); each annotator's first label of an item counts.")
            st.dataframe(table, hide_index=True)
    with quality:
        if quality.open:
            try:
                from collector.jobs.annotator_quality import annotator_quality
            except ImportError:
                st.info("Quality control is not installed in this version.")
            else:
                st.dataframe(annotator_quality(store), hide_index=True)
            st.caption("Suspicion probe: annotators asked once (study setting `suspicion_probe_after`) whether any "
                       "response looked edited. A group that noticed the edits may be judging the edits.")
            probe = suspicion_table(store)
            if probe.empty:
                st.info("Nobody has answered the suspicion probe yet.")
            else:
                st.dataframe(probe, hide_index=True)


panels()
