"""The annotators' Streamlit app (``ner app``): Extract, Annotate and Models pages.

Pages in ``app/views`` stay thin; what they compute lives in small modules here so that it can be
tested without a browser.
"""
