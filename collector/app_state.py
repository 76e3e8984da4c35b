"""Shared state for the Streamlit app: one Collector per database, created once per server."""

from __future__ import annotations

import os

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
