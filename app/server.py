"""What ``ner app`` serves: the app of ``main.py`` behind the Host check of :mod:`app.hosts`.

``streamlit run`` finds ``streamlit_app`` below (an ``st.App``) and serves it with uvicorn, with
the middleware in front of every HTTP request and websocket. ``ner app`` runs this file, never
``main.py`` directly, so a server it starts cannot be reached under a host name it does not know.
"""

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from app.hosts import HostCheck, allowed_from_env

streamlit_app = st.App(
    Path(__file__).with_name("main.py"), middleware=[Middleware(HostCheck, allowed=allowed_from_env())]
)
