"""Deconfound's Streamlit entrypoint: page config and navigation only."""

import streamlit as st

from collector.app_state import start_worker

st.set_page_config(page_title="Deconfound", page_icon=":material/compare_arrows:", layout="wide")

start_worker()  # retrains the reward model off the request path

navigation = st.navigation([
    st.Page("collector/pages/annotate.py", title="Annotate", icon=":material/thumbs_up_down:", default=True),
    st.Page("collector/pages/research.py", title="Researcher", icon=":material/science:", url_path="researcher"),
    st.Page("collector/pages/dashboard.py", title="Dashboard", icon=":material/monitoring:", url_path="dashboard"),
    st.Page("collector/pages/quality.py", title="Quality", icon=":material/verified:", url_path="quality"),
    st.Page("collector/pages/data.py", title="Data", icon=":material/database:", url_path="data"),
])
navigation.run()
