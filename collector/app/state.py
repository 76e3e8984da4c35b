"""Shared state for the Streamlit app: one Collector per database, created once per server,
the trainer process beside it, and who is logged in as a researcher."""

from __future__ import annotations

import os
import subprocess
from urllib.parse import urlsplit

import streamlit as st

from collector.app.annotator import SERVER_URL_META
from collector.serving.service import Collector
from collector.store import Store
from collector.store.create import DEFAULT_DB


def db_path() -> str:
    """The database the app serves: ``$DECONFOUND_DB`` or ``data/deconfound.db``."""
    return os.environ.get("DECONFOUND_DB", str(DEFAULT_DB))


@st.cache_resource(show_spinner=False)
def _collector(path: str) -> Collector:
    return Collector(Store(path))


def get_collector() -> Collector:
    return _collector(db_path())


@st.cache_resource(show_spinner=False)
def _worker(path: str) -> subprocess.Popen | None:
    """Start the online trainer as its own process beside the app, once per server (off with
    ``DECONFOUND_WORKER=0``; ``DECONFOUND_TRAINING_CONFIG`` names a training TOML)."""
    if os.environ.get("DECONFOUND_WORKER", "1") == "0":
        return None
    from collector.serving.worker import spawn_worker

    return spawn_worker(path, os.environ.get("DECONFOUND_TRAINING_CONFIG") or None)


def start_worker() -> None:
    _worker(db_path())


def server_url() -> str:
    """This server's own address from its options (``http://ADDRESS:PORT/BASE``)."""
    address = st.get_option("server.address") or "localhost"
    if address in ("0.0.0.0", "::"):
        address = "localhost"
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"http://{address}:{st.get_option('server.port')}/{base + '/' if base else ''}"


@st.cache_resource(show_spinner=False)
def _record_server_url(path: str, url: str) -> None:
    """Tell the CLI where the app runs (``annotator add`` prints login links with it)."""
    if os.environ.get("DECONFOUND_BASE_URL"):
        return
    try:
        store = _collector(path).store
        if store.get_meta(SERVER_URL_META) != url:
            store.set_meta(SERVER_URL_META, url)
    except Exception:  # a read-only database still serves; the CLI then falls back
        pass


def record_server_url() -> None:
    _record_server_url(db_path(), server_url())


def base_url() -> str:
    """The address annotators reach the app at: ``$DECONFOUND_BASE_URL``, else the scheme and
    host this page was opened with (``st.context.url``), else the server's own options."""
    if os.environ.get("DECONFOUND_BASE_URL"):
        return os.environ["DECONFOUND_BASE_URL"].rstrip("/") + "/"
    try:
        seen = urlsplit(st.context.url or "")
    except Exception:  # no browser context (AppTest)
        seen = urlsplit("")
    if not seen.scheme or not seen.netloc:
        return server_url()
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"{seen.scheme}://{seen.netloc}/{base + '/' if base else ''}"


def is_researcher() -> bool:
    """Whether this browser session has logged in as a researcher."""
    return bool(st.session_state.get("research_ok"))


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
    from acquisition.core.errors import DeconfoundError
    from collector.app.researcher import check_password

    if st.session_state.get("research_ok"):
        return
    with st.form(f"{page}_login"):
        password = st.text_input("Researcher password", type="password", key=f"{page}_password")
        if st.form_submit_button("Enter", type="primary", key=f"{page}_enter"):
            try:
                check_password(password, researcher_password())
                st.session_state["research_ok"] = True
                st.rerun()
            except DeconfoundError as exc:
                st.error(str(exc))
    st.stop()
