"""Deconfound's Streamlit entrypoint: page config and navigation only."""

import streamlit as st

st.set_page_config(page_title="Deconfound", page_icon=":material/compare_arrows:", layout="wide")

navigation = st.navigation([
    st.Page("collector/pages/annotate.py", title="Annotate", icon=":material/thumbs_up_down:", default=True),
])
navigation.run()
