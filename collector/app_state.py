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
