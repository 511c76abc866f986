"""Period Workbench dashboard: ``streamlit run workbench/app.py``.

Reads the same settings as the pipeline (WORKBENCH_DB_URL, WORKBENCH_CONFIG,
WORKBENCH_DATA_DIR). This file only declares the pages and runs the one
``st.navigation`` picks; every page starts with the shared title and sidebar
(``workbench/shell.py``); the pages are in ``workbench/views/``, the queries in
``workbench/data.py``. ``workbench`` is an installed package (``pip install
-e .``), so these imports work however Streamlit sets ``sys.path``.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).resolve().parent / "views"


# Not "pages/": Streamlit treats a pages/ folder next to the main script as a
# legacy multipage app, and the first visitor of a fresh server who arrives by
# a deep link (/month?dataset=…) got that folder's file names as navigation
# and the page without this file's set_page_config.


def main() -> None:
    st.set_page_config(page_title="Period Workbench", page_icon=":material/calendar_month:", layout="wide")
    pages = [
        st.Page(PAGES / "overview.py", title="Overview", icon=":material/grid_view:", default=True),
        st.Page(PAGES / "month.py", title="Month", icon=":material/event_note:", url_path="month"),
        st.Page(PAGES / "logs.py", title="Logs", icon=":material/list_alt:", url_path="logs"),
    ]
    st.navigation(pages).run()


main()
