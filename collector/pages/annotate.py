"""Annotator page: log in by token, compare two responses, choose, next pair."""

import streamlit as st

from collector.annotate import GUIDELINES, STRENGTHS, login, sign_up, signup_open, submit_choice
from collector.app_state import get_collector
from collector.errors import DeconfoundError

collector = get_collector()

if "annotate_annotator" not in st.session_state:
    st.title("Deconfound · label response pairs")
    token = st.query_params.get("token", "")
    if token:
        try:
            st.session_state["annotate_annotator"] = login(collector, token)
            st.rerun()
        except DeconfoundError as exc:
            st.error(str(exc))
    with st.form("annotate_login"):
        typed = st.text_input("Your access token", type="password", key="annotate_token",
                              help="It is the part after ?token= in the link you were given.")
        if st.form_submit_button("Start labelling", type="primary"):
            try:
                st.session_state["annotate_annotator"] = login(collector, typed)
                st.rerun()
            except DeconfoundError as exc:
                st.error(str(exc))
    if signup_open(collector):
        with st.form("annotate_signup"):
            st.markdown("**New here?** Enter a name to start labelling straight away.")
            name = st.text_input("Your name", key="annotate_signup_name")
            if st.form_submit_button("Sign up and start"):
                try:
                    annotator, new_token = sign_up(collector, name)
                    st.session_state["annotate_annotator"] = annotator
                    st.session_state["annotate_flash"] = "Welcome. Your personal link is in the sidebar."
                    st.query_params["token"] = new_token
                    st.rerun()
                except DeconfoundError as exc:
                    st.error(str(exc))
    st.stop()

annotator = st.session_state["annotate_annotator"]
done = collector.progress(annotator["id"])

with st.sidebar:
    st.markdown(f"**{annotator['name']}** · group `{annotator['group_name']}`")
    st.metric("Labels given", done)
    if token := st.query_params.get("token"):
        st.caption("Bookmark this page to come back: your token is in its address.")
    with st.expander("Guidelines", expanded=done == 0):
        st.markdown(GUIDELINES)
    if st.button("Log out", key="annotate_logout"):
        del st.session_state["annotate_annotator"]
        st.rerun()

try:
    pair = collector.next_pair(annotator["id"])
except DeconfoundError as exc:
    st.error(str(exc))
    st.stop()

if flash := st.session_state.pop("annotate_flash", None):
    st.toast(flash)

st.caption(f"Pair #{pair.served_pair_id} · {pair.task_type}")
with st.container(border=True):
    st.markdown("**Request**")
    st.markdown(pair.prompt)

left, right = st.columns(2)
with left, st.container(border=True, key="annotate_left_response"):
    st.markdown("**Response A (left)**")
    st.markdown(pair.left_text)
with right, st.container(border=True, key="annotate_right_response"):
    st.markdown("**Response B (right)**")
    st.markdown(pair.right_text)

with st.form(f"annotate_form_{pair.served_pair_id}", border=False):
    strength = st.radio("How much better? (optional)", list(STRENGTHS), index=None, horizontal=True,
                        key=f"annotate_strength_{pair.served_pair_id}")
    rationale = st.text_input("Why? (optional, one sentence)", key=f"annotate_rationale_{pair.served_pair_id}")
    cols = st.columns(5)
    actions = [("left", "A is better", "1", "primary"), ("right", "B is better", "2", "primary"),
               ("tie", "Tie", "3", "secondary"), ("both_bad", "Both bad", "4", "secondary"),
               ("skip", "Skip", "S", "tertiary")]
    chosen = None
    for col, (choice, label, key, kind) in zip(cols, actions):
        with col:
            if st.form_submit_button(label, shortcut=key, type=kind, key=f"annotate_{choice}",
                                     width="stretch"):
                chosen = choice

if chosen:
    try:
        submit_choice(collector, annotator["id"], pair.served_pair_id, chosen, strength, rationale)
        st.session_state["annotate_flash"] = "Skipped." if chosen == "skip" else "Saved. Here is the next pair."
    except DeconfoundError as exc:
        st.error(str(exc))
        st.stop()
    st.rerun()
