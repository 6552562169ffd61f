"""The app's entry point (``ner app`` runs ``streamlit run`` on this file): page setup and navigation."""

from pathlib import Path

import streamlit as st

from app.rendering import stylesheet

VIEWS = Path(__file__).parent / "views"

# The favicon is a local file: a ":material/...:" page icon makes the browser fetch it from
# fonts.gstatic.com, and the app must work offline and never contact another host.
FAVICON = Path(__file__).parent / "static" / "favicon.svg"

st.set_page_config(page_title="ner · entities and relations", page_icon=str(FAVICON), layout="wide")
st.html(stylesheet())
pages = [
    st.Page(VIEWS / "extract.py", title="Extract", icon=":material/search:", default=True),
    st.Page(VIEWS / "annotate.py", title="Annotate", icon=":material/edit_note:"),
    st.Page(VIEWS / "models.py", title="Models", icon=":material/bar_chart:"),
]
st.navigation(pages, position="top").run()
