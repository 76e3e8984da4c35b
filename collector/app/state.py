"""Shared state for the Streamlit app: one Collector per database, created once per server,
the trainer process beside it, and who is logged in as a researcher."""

from __future__ import annotations

import logging
import os
import subprocess
from urllib.parse import urlsplit

import streamlit as st

from acquisition.core.errors import DeconfoundError
from collector.app.annotator import SERVER_URL_META
from collector.serving.service import Collector
from collector.store import Store
from collector.store.create import DEFAULT_DB

log = logging.getLogger("deconfound.app")


def db_path() -> str:
    """The database the app serves: ``$DECONFOUND_DB`` or ``data/deconfound.db``."""
    return os.environ.get("DECONFOUND_DB", str(DEFAULT_DB))


@st.cache_resource(show_spinner=False)
def _collector(path: str) -> Collector:
    return Collector(Store(path), background_rebuild=True)  # no annotator waits on a rebuild


def get_collector() -> Collector:
    return _collector(db_path())


@st.cache_resource(show_spinner=False)
def _worker(path: str) -> subprocess.Popen | None:
    """Start the online trainer as its own process beside the app, once per server (off with
    ``DECONFOUND_WORKER=0``; ``DECONFOUND_TRAINING_CONFIG`` names a training TOML)."""
    if os.environ.get("DECONFOUND_WORKER", "1") == "0":
        return None
    from collector.jobs.worker import spawn_worker

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
def _record_server_url(path: str, url: str) -> str:
    """Tell the CLI where the app runs (``annotator add`` prints login links with it). Cached
    only once it worked: a failure raises out of the cache, so the next page load tries again."""
    store = _collector(path).store
    if store.get_meta(SERVER_URL_META) != url:
        store.set_meta(SERVER_URL_META, url)
    return url


def record_server_url() -> None:
    if os.environ.get("DECONFOUND_BASE_URL"):
        return
    try:
        _record_server_url(db_path(), server_url())
    except DeconfoundError as exc:  # a read-only database still serves; `annotator add` then falls back
        log.warning("could not record the app's address for the CLI's login links: %s", exc)


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


SESSION_COOKIE = "deconfound_researcher"


def client_address() -> str:
    """The browser's address as the server sees it (logins are throttled per client)."""
    try:
        address = st.context.ip_address
    except Exception:  # no browser context (AppTest)
        address = None
    return address if isinstance(address, str) and address else "unknown"


def current_researcher() -> str | None:
    """The researcher logged in in this browser: this session's login, else the session cookie
    a login set (so a reload keeps it until the session expires, is logged out or the account
    is removed). Every call checks the database, so a removed account is out at once."""
    store = get_collector().store
    token = st.session_state.get("researcher_token")
    if token is None:
        try:
            token = st.context.cookies.get(SESSION_COOKIE)
        except Exception:  # no browser context (AppTest)
            token = None
        token = token if isinstance(token, str) else None
    name = store.session_researcher(token)
    if name is None:
        st.session_state.pop("researcher_token", None)
        return None
    st.session_state["researcher_token"] = token
    return name


def is_researcher() -> bool:
    """Whether this browser session has logged in as a researcher."""
    return current_researcher() is not None


def researcher_password() -> str | None:
    """The shared researcher password used while no researcher account exists:
    ``$DECONFOUND_RESEARCHER_PASSWORD``, else ``researcher_password`` in Streamlit secrets."""
    if os.environ.get("DECONFOUND_RESEARCHER_PASSWORD"):
        return os.environ["DECONFOUND_RESEARCHER_PASSWORD"]
    try:
        return st.secrets.get("researcher_password")
    except Exception:  # no secrets file
        return None


def _set_cookie(token: str, seconds: int) -> None:
    # SameSite=Strict: never sent by another site's page; max-age matches the database session
    st.html(f"""<script>(window.parent || window).document.cookie =
        "{SESSION_COOKIE}={token}; path=/; max-age={seconds}; SameSite=Strict";</script>""",
            unsafe_allow_javascript=True)


def emit_session_cookie() -> None:
    """After a login (or a logout), tell the browser: the entrypoint calls this on every run,
    before the page, so the script that sets the cookie is in the page that stays drawn."""
    from collector.store.researchers import SESSION_HOURS

    pending = st.session_state.pop("researcher_cookie", None)
    if pending is not None:
        _set_cookie(pending, int(SESSION_HOURS * 3600) if pending else 0)


def audit(action: str, detail: dict | None = None) -> None:
    """Record in the audit log that the logged-in researcher did ``action``."""
    get_collector().store.audit(current_researcher() or "unknown", action, detail)


def require_researcher(page: str) -> None:
    """Show the researcher login and stop the page until it succeeds; one login opens every
    researcher page and survives a reload (a session cookie). With researcher accounts the
    form asks for a name; without, for the shared password. Failed logins are throttled."""
    from acquisition.core.errors import DeconfoundError

    name = current_researcher()
    if name is not None:
        with st.sidebar:
            st.caption(f"Researcher: {name}")
            if st.button("Log out", key=f"{page}_logout"):
                get_collector().store.logout(st.session_state.pop("researcher_token", None))
                st.session_state["researcher_cookie"] = ""  # expire it in the browser
                st.rerun()
        return
    store = get_collector().store
    accounts = store.has_researchers()
    with st.form(f"{page}_login"):
        user = st.text_input("Researcher name", key=f"{page}_name") if accounts else ""
        password = st.text_input("Researcher password", type="password", key=f"{page}_password")
        if st.form_submit_button("Enter", type="primary", key=f"{page}_enter"):
            try:
                token = store.login(user, password, client_address(), shared_password=researcher_password())
                st.session_state["researcher_token"] = token
                st.session_state["researcher_cookie"] = token  # set on the next run, which draws the page
                st.rerun()
            except DeconfoundError as exc:
                st.error(str(exc))
    st.stop()
