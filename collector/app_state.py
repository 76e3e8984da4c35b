"""Shared state for the Streamlit app: one Collector per database, created once per server."""

from __future__ import annotations

import os
import threading

import streamlit as st

from collector.serving import Collector
from collector.setup import DEFAULT_DB
from collector.store import Store


def db_path() -> str:
    """The database the app serves: ``$DECONFOUND_DB`` or ``data/deconfound.db``."""
    return os.environ.get("DECONFOUND_DB", str(DEFAULT_DB))


@st.cache_resource(show_spinner=False)
def _collector(path: str) -> Collector:
    return Collector(Store(path))


def get_collector() -> Collector:
    return _collector(db_path())


@st.cache_resource(show_spinner=False)
def _worker(path: str) -> threading.Event | None:
    """Start the online trainer beside the app, once per server (off with DECONFOUND_WORKER=0)."""
    if os.environ.get("DECONFOUND_WORKER", "1") == "0":
        return None
    from models.online import make_trainer

    stop = threading.Event()
    trainer = make_trainer(path)
    threading.Thread(target=trainer.run, args=(stop,), kwargs={"poll_seconds": 10.0},
                     name="deconfound-trainer", daemon=True).start()
    return stop


def start_worker() -> None:
    _worker(db_path())


def researcher_password() -> str | None:
    """The configured researcher password: ``$DECONFOUND_RESEARCHER_PASSWORD``, else
    ``researcher_password`` in Streamlit secrets; ``None`` when neither is set."""
    if os.environ.get("DECONFOUND_RESEARCHER_PASSWORD"):
        return os.environ["DECONFOUND_RESEARCHER_PASSWORD"]
    try:
        return st.secrets.get("researcher_password")
    except Exception:  # no secrets file
        return None


def require_researcher(page: str) -> None:
    """Show the researcher login and stop the page until the password is given; one login
    (``research_ok`` in the session) opens every researcher page."""
    from collector.errors import DeconfoundError
    from collector.research import check_password

    if st.session_state.get("research_ok"):
        return
    with st.form(f"{page}_login"):
        password = st.text_input("Researcher password", type="password", key=f"{page}_password")
        if st.form_submit_button("Enter", type="primary"):
            try:
                check_password(password, researcher_password())
                st.session_state["research_ok"] = True
                st.rerun()
            except DeconfoundError as exc:
                st.error(str(exc))
    st.stop()
