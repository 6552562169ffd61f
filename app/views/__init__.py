"""The app's pages, run by ``st.navigation`` from ``app/main.py``."""
