"""Deconfound's Streamlit entrypoint: page config and navigation only.

Annotators see the labelling page and nothing else; the researcher pages join the navigation
once this browser session has logged in as a researcher (each researcher URL shows the login
until then, so a bookmarked /dashboard still works).
"""

from pathlib import Path

import streamlit as st

from collector.app.state import emit_session_cookie, is_researcher, record_server_url, require_researcher, start_worker
from collector.serving.memory import configure_server_process

ICON = str(Path(__file__).resolve().parent / "collector" / "assets" / "icon.png")  # local: no font host
RESEARCHER_PAGES = [  # (file, title, icon, url path)
    ("collector/app/pages/research.py", "Researcher", ":material/science:", "researcher"),
    ("collector/app/pages/dashboard.py", "Dashboard", ":material/monitoring:", "dashboard"),
    ("collector/app/pages/quality.py", "Quality", ":material/verified:", "quality"),
    ("collector/app/pages/data.py", "Data", ":material/database:", "data"),
]


def _login_page(url_path: str):
    def login() -> None:
        st.title("Researcher login")
        require_researcher(url_path)
        st.rerun()  # logged in: the navigation now holds the real page at this address

    login.__name__ = f"login_{url_path}"
    return login


st.set_page_config(page_title="Deconfound", page_icon=ICON, layout="wide")
# a 0.5 ms GIL switch interval, and glibc's mmap threshold fixed at 1 MiB so that a server
# swapping policies at a million responses gives back what it frees (collector/serving/memory.py)
configure_server_process()
start_worker()  # retrains the reward model in a process of its own
record_server_url()  # the CLI prints login links with this server's address

annotate = st.Page("collector/app/pages/annotate.py", title="Annotate", icon=":material/thumbs_up_down:", default=True)
if is_researcher():
    navigation = st.navigation([annotate, *[st.Page(path, title=title, icon=icon, url_path=url)
                                            for path, title, icon, url in RESEARCHER_PAGES]])
else:
    navigation = st.navigation([annotate, *[st.Page(_login_page(url), title=title, url_path=url)
                                            for _path, title, _icon, url in RESEARCHER_PAGES]],
                               position="hidden")
emit_session_cookie()  # after a login or logout: the browser keeps (or drops) the session cookie
navigation.run()
