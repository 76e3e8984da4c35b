"""Annotator page: log in by token (or sign up on demo databases), then label pairs.

Each action button is drawn with the served pair it answers and hands that pair's id to its
callback, which saves the answer before the rerun; only the labelling fragment reruns, so the
next pair is painted once, from the top, with the actions in a bar that stays on screen.
"""

import time

import streamlit as st

from acquisition.core.errors import DeconfoundError, StudyComplete
from collector.app.annotator import (
    ACTIONS,
    MAX_REASON_CHARS,
    SHORTCUTS,
    STRENGTHS,
    AnswerResult,
    answer,
    crowd_login,
    escape_markdown,
    login,
    personal_link,
    progress_text,
    sign_up,
    signup_open,
)
from collector.app.state import base_url, get_collector
from collector.serving.study import MAX_SUSPICION_NOTE, SUSPICION_ANSWERS, SUSPICION_QUESTION

# the action bar stays at the bottom of the window while the responses scroll under it
PAGE_CSS = """<style>
[data-testid="stLayoutWrapper"]:has(> .st-key-annotate_actions) {position: sticky; bottom: 0; z-index: 50;}
.st-key-annotate_actions {padding: 0.5rem 0 0.6rem; background: var(--background-color, #ffffff);
  border-top: 1px solid rgba(49, 51, 63, 0.2);}
.st-key-annotate_actions [data-testid="stForm"] {padding: 0;}
[data-testid="stMainBlockContainer"] {padding-top: 3.75rem;}
@media (max-width: 640px) {
  .st-key-annotate_actions {gap: 0.35rem; padding: 0.35rem 0;}
  .st-key-annotate_actions [data-testid="stWidgetLabel"] {display: none;}
  .st-key-annotate_actions button {padding: 0.2rem 0.55rem; min-height: 2.1rem;}
  .st-key-annotate_actions button kbd {display: none;}
  .st-key-annotate_actions [data-testid="stHorizontalBlock"] {gap: 0.4rem; row-gap: 0.4rem;}
}
</style>"""
SCROLL_TO_TOP = """<script>/* pair %d */
for (const el of window.parent.document.querySelectorAll(
    '[data-testid="stMain"], [data-testid="stAppViewContainer"], section.main')) { el.scrollTo(0, 0); }
window.parent.scrollTo(0, 0);
</script>"""
KIND_STYLE = {"saved": st.success, "skipped": st.info, "repeat": st.info, "elsewhere": st.warning}

collector = get_collector()


def _enter(annotator: dict, token: str | None, welcome: str | None = None) -> None:
    st.session_state["annotate_annotator"] = annotator
    st.session_state["annotate_token"] = token
    if token:  # a crowd entry URL keeps its own parameters: reopening it logs in again
        st.query_params["token"] = token
    if welcome:
        st.session_state["annotate_welcome"] = welcome


def _login_from_url() -> str | None:
    """Log in from the address (a crowd entry URL or ``?token=``) before anything is drawn, so
    the labelling view paints in this same run (no second run of the page); returns the error
    to show on the login screen when the address does not log in."""
    try:
        if (crowd := crowd_login(collector, st.query_params)) is not None:
            _enter(crowd, None)
            return None
    except DeconfoundError as exc:
        st.title(collector.study()[0].title)
        st.error(str(exc))
        st.stop()
    token = st.query_params.get("token", "")
    if token:
        try:
            _enter(login(collector, token), token)
        except DeconfoundError as exc:
            return str(exc)
    return None


def _login_screen(error: str | None) -> None:
    st.title(collector.study()[0].title)
    if error:
        st.error(error)
    with st.form("annotate_login"):
        typed = st.text_input("Your access token", type="password", key="annotate_token_input",
                              help="It is the part after ?token= in the link you were given.")
        if st.form_submit_button("Start labelling", type="primary", key="annotate_start"):
            try:
                _enter(login(collector, typed), typed.strip())
                st.rerun()
            except DeconfoundError as exc:
                st.error(str(exc))
    if signup_open(collector):
        with st.form("annotate_signup"):
            st.markdown("**New here?** Enter a name to start labelling straight away.")
            name = st.text_input("Your name", key="annotate_signup_name", max_chars=80)
            if st.form_submit_button("Sign up and start", key="annotate_signup"):
                try:
                    annotator, new_token = sign_up(collector, name)
                    _enter(annotator, new_token, "Welcome. Your personal link is in the sidebar: "
                                                 "bookmark it to come back to your pairs.")
                    st.rerun()
                except DeconfoundError as exc:
                    st.error(str(exc))
    st.stop()


def _log_out() -> None:
    for key in [k for k in st.session_state if str(k).startswith("annotate_")]:
        del st.session_state[key]
    st.query_params.clear()


def _on_answer(annotator_id: int, served_pair_id: int, choice: str) -> None:
    """Runs before the rerun: saves the answer for the pair these buttons were drawn with."""
    answered_at = time.time()
    state = st.session_state
    shown_pair, shown_at = state.get("annotate_shown", (None, None))
    answered = state.setdefault("annotate_answered", [])
    result = answer(get_collector(), annotator_id, served_pair_id, choice,
                    state.get("annotate_strength"), state.get("annotate_reason"),
                    shown_at=shown_at if shown_pair == served_pair_id else None,
                    answered_at=answered_at, answered_here=served_pair_id in answered)
    if result.kind in ("saved", "skipped"):
        answered[:] = [*answered[-49:], served_pair_id]
    state["annotate_result"] = result


def _action_bar(annotator_id: int, pair_id: int, result: AnswerResult | None) -> None:
    with st.container(key="annotate_actions"):
        if result is not None and result.keeps_pair:
            st.error(result.message)
        with st.form("annotate_form", border=False, enter_to_submit=False):
            with st.container(horizontal=True, gap="small"):
                for choice, label in ACTIONS.items():
                    st.form_submit_button(
                        label, key=f"annotate_{choice}_{pair_id}", shortcut=SHORTCUTS[choice],
                        type="primary" if choice in ("left", "right") else "tertiary" if choice == "skip" else "secondary",
                        on_click=_on_answer, args=(annotator_id, pair_id, choice))
            with st.container(horizontal=True, gap="medium", vertical_alignment="bottom"):
                # keyed once, not per pair (cheaper to redraw); emptied whenever a new pair is shown
                st.segmented_control("How much better? (only with A or B)", list(STRENGTHS),
                                     key="annotate_strength")
                st.text_input("Why? (optional, one sentence)", key="annotate_reason",
                              max_chars=MAX_REASON_CHARS, width=420, placeholder="Why? (optional, one sentence)")


def _conversation(turns) -> None:
    """A dialogue as chat messages: the earlier turns folded away, the last user turn shown."""
    last_user = max(i for i, t in enumerate(turns) if t["role"] == "user") if any(
        t["role"] == "user" for t in turns) else len(turns) - 1
    earlier, current = turns[:last_user], turns[last_user:]
    if earlier:
        with st.expander(f"Earlier in the conversation ({len(earlier)} turns)"):
            for turn in earlier:
                with st.chat_message(turn["role"] if turn["role"] in ("user", "assistant") else "ai"):
                    st.markdown(turn["content"])
    for turn in current:
        with st.chat_message(turn["role"] if turn["role"] in ("user", "assistant") else "ai"):
            st.markdown(turn["content"])


def _on_probe(annotator_id: int) -> None:
    """Runs before the rerun: stores the answer to the suspicion probe (asked once)."""
    state = st.session_state
    choice = state.get("annotate_probe_answer")
    if choice is None:
        state["annotate_probe_error"] = "Pick an answer to continue."
        return
    try:
        get_collector().answer_suspicion(annotator_id, choice, state.get("annotate_probe_what"))
    except DeconfoundError as exc:
        state["annotate_probe_error"] = str(exc)


def _suspicion_probe(annotator_id: int) -> None:
    """The study's one question about edited responses, in place of the next pair."""
    with st.container(border=True, key="annotate_probe"):
        st.markdown(f"**One question before the next pair.** {SUSPICION_QUESTION}")
        if error := st.session_state.pop("annotate_probe_error", None):
            st.error(error)
        with st.form("annotate_probe_form", border=False):
            st.radio("Your answer", list(SUSPICION_ANSWERS), format_func=SUSPICION_ANSWERS.get, index=None,
                     horizontal=True, key="annotate_probe_answer")
            st.text_input("What gave it away? (optional)", max_chars=MAX_SUSPICION_NOTE, key="annotate_probe_what")
            st.form_submit_button("Continue", type="primary", key="annotate_probe_submit",
                                  on_click=_on_probe, args=(annotator_id,))


@st.fragment
def labelling(annotator_id: int) -> None:
    """The pair on screen, its actions and the last answer's outcome; reruns alone on an answer."""
    result: AnswerResult | None = st.session_state.pop("annotate_result", None)
    if collector.suspicion_due(annotator_id):  # asked once, after the study's number of labels
        if result is not None and not result.keeps_pair:
            KIND_STYLE[result.kind](result.message)
        _suspicion_probe(annotator_id)
        return
    try:
        pair = collector.next_pair(annotator_id)
        done = collector.progress(annotator_id)
        quota = collector.study()[0].quota
    except StudyComplete as complete:
        if result is not None and not result.keeps_pair:
            KIND_STYLE[result.kind](result.message)
        with st.container(border=True, key="annotate_complete"):
            st.markdown(str(complete))
            if complete.code:
                st.markdown("Your completion code:")
                st.code(complete.code, language=None)
            if complete.url:
                st.link_button("Return to the study platform", complete.url, type="primary",
                               key="annotate_complete_return")
        return
    except DeconfoundError as exc:
        st.error(str(exc))
        return
    pair_id = pair.served_pair_id
    new_on_screen = st.session_state.get("annotate_shown", (None,))[0] != pair_id
    if new_on_screen:  # first, so the window is at the top before the new pair is drawn
        st.html(SCROLL_TO_TOP % pair_id, unsafe_allow_javascript=True)
        st.session_state["annotate_strength"], st.session_state["annotate_reason"] = None, ""
    with st.container(key="annotate_pair"):  # one block updated in place from pair to pair
        with st.container(horizontal=True, vertical_alignment="center"):
            st.caption(f"Pair #{pair_id} · {escape_markdown(pair.task_type)}")
            st.caption(progress_text(done, quota))
        if result is not None and not result.keeps_pair:
            KIND_STYLE[result.kind](result.message)
        if pair.objective:
            st.markdown(f"**{pair.objective}**")
        with st.container(border=True):
            st.markdown("**Request**")
            if len(pair.turns) > 1:
                _conversation(pair.turns)
            else:
                st.markdown(pair.prompt)
        left, right = st.columns(2)
        with left, st.container(border=True, key="annotate_left_response"):
            st.markdown("**Response A**")
            st.markdown(pair.left_text)
        with right, st.container(border=True, key="annotate_right_response"):
            st.markdown("**Response B**")
            st.markdown(pair.right_text)
        _action_bar(annotator_id, pair_id, result)
    if new_on_screen:
        st.session_state["annotate_shown"] = (pair_id, time.time())


if "annotate_annotator" not in st.session_state:
    url_error = _login_from_url()
    if "annotate_annotator" not in st.session_state:
        _login_screen(url_error)

annotator = st.session_state["annotate_annotator"]
study, _ = collector.study()
st.html(PAGE_CSS)
with st.sidebar:
    st.markdown(f"#### {escape_markdown(study.title)}")
    st.markdown(f"**{escape_markdown(annotator['name'])}** · group {escape_markdown(annotator['group_name'])}")
    if token := st.session_state.get("annotate_token"):
        st.caption("Your personal link: bookmark it, or copy it, to come back.")
        # a plain link, not st.code: its syntax highlighter is the heaviest script the page
        # would load before its first paint (a new session painted 0.25 s sooner without it)
        link = personal_link(base_url(), token)
        st.markdown(f"[{link}]({link})")
    with st.expander("Guidelines", expanded=collector.progress(annotator["id"]) == 0):
        st.markdown(study.guidelines)
    st.button("Log out", key="annotate_logout", on_click=_log_out)
if welcome := st.session_state.pop("annotate_welcome", None):
    st.info(welcome)
labelling(annotator["id"])
