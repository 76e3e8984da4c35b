"""Data page (researcher login): import preference data, download every export and its card.

Exports are built only when a logged-in researcher clicks (Streamlit's deferred download), the
session is checked again at that moment, the export is written to the audit log, and the file is
removed from Streamlit's media store a few seconds later: its ``/media/...`` address then answers
404 to anyone, so a download link does not outlive the download.
"""

import functools
import os
import threading

import streamlit as st

from acquisition.core.errors import DeconfoundError
from collector.app.state import audit, get_collector, require_researcher
from collector.io.card import build_card
from collector.io.export import export_bytes
from collector.io.frames import FORMATS, pairs_frame
from collector.io.importers import FORMATS as IMPORT_FORMATS
from collector.io.importers import import_upload

FORMAT_LABELS = {
    "trl": "TRL (prompt / chosen / rejected)",
    "trl-conversational": "TRL conversational (message lists)",
    "arena": "Chatbot Arena battles (ties included)",
    "pairs": "Full served-pair log",
}
MIME = {"jsonl": "application/jsonl", "parquet": "application/vnd.apache.parquet"}


collector = get_collector()
store = collector.store
st.title("Data")

require_researcher("data")

st.subheader("Import preference data")
st.caption(
    "HH-RLHF, TRL (standard or conversational), UltraFeedback binarized, Chatbot Arena battles "
    "or CSV with prompt / chosen / rejected columns; JSON Lines, JSON, CSV or Parquet, gzipped "
    "or not. The whole file is imported or nothing is; the prompts and responses join the pool "
    "and the human preferences are kept beside them."
)
uploaded = st.file_uploader("Preference file", key="data_upload",
                            type=["jsonl", "json", "csv", "gz", "parquet"])
left, right = st.columns(2)
import_format = left.selectbox("Format", ["auto", *IMPORT_FORMATS], key="data_import_format")
task_type = right.text_input("Prompt type for rows without one", value="general", key="data_task_type")
if st.button("Import", type="primary", key="data_import", disabled=uploaded is None) and uploaded is not None:
    try:
        result = import_upload(store, uploaded.name, uploaded.getvalue(), import_format, task_type or None)
        audit("data imported", {"file": uploaded.name, "new_preferences": result.new_preferences})
        st.success(result.summary() + " The trainer embeds the new texts in the background.")
    except DeconfoundError as exc:
        st.error(str(exc))

st.subheader("Export")
st.caption(
    "Every export carries the assignment mechanism (policy, version, arm, propensities, edit "
    "vectors, display position). The dataset card states the policies, arms, counts, balance, "
    "attribute effects, annotator groups and exclusions. Files are built when you click."
)


DOWNLOAD_SECONDS = float(os.environ.get("DECONFOUND_DOWNLOAD_SECONDS", "5"))  # a link lives this long
TOKEN = st.session_state.get("researcher_token")


def _purge_downloads() -> None:
    """Drop download files no page shows any more: Streamlit marks such a file on one pass and
    deletes it on the next, so two passes remove an export that was just fetched."""
    from streamlit import runtime

    if runtime.exists():
        manager = runtime.get_instance().media_file_mgr
        manager.remove_orphaned_files()
        manager.remove_orphaned_files()


def _guarded(build, what: str):
    """Build an export for the researcher whose session ``TOKEN`` is (checked again now, in
    the download's own thread), record it, and schedule the file's removal."""
    researcher = store.session_researcher(TOKEN)
    if researcher is None:
        raise PermissionError("the researcher session has ended; log in again")
    data = build()
    store.audit(researcher, "exported", {"what": what})
    timer = threading.Timer(DOWNLOAD_SECONDS, _purge_downloads)
    timer.daemon = True
    timer.start()
    return data


def _file(fmt: str, ext: str) -> bytes:
    return _guarded(lambda: export_bytes(store, fmt, ext), f"{fmt}.{ext}")


def _card(fmt: str) -> str:
    return _guarded(lambda: build_card(store, pairs_frame(store), fmt=fmt, export_name=f"deconfound-{fmt}"),
                    f"{fmt} card")


for fmt in FORMATS:
    cols = st.columns([3, 1, 1, 1])
    cols[0].markdown(f"**{FORMAT_LABELS.get(fmt, fmt)}** (`{fmt}`)")
    for col, ext in zip(cols[1:3], ("jsonl", "parquet")):
        col.download_button(
            ext.upper() if ext == "jsonl" else "Parquet",
            data=functools.partial(_file, fmt, ext),
            file_name=f"deconfound-{fmt}.{ext}", mime=MIME[ext], key=f"data_download_{fmt}_{ext}",
            on_click="ignore",
        )
    cols[3].download_button(
        "Card",
        data=functools.partial(_card, fmt),
        file_name=f"deconfound-{fmt}.card.md", mime="text/markdown", key=f"data_download_{fmt}_card",
        on_click="ignore",
    )
