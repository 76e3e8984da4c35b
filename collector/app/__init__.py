"""The Streamlit app: pages (``pages/``) over plain functions (``annotator``, ``researcher``,
``panels``), the shared state (``state``) and the README's pictures (``screenshots``)."""

from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]  # where `streamlit run app.py` runs
APP_SCRIPT = REPOSITORY / "app.py"
