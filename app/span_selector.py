"""Our one custom component: the document text, highlighted, where selecting words with the mouse
adds a span.

Built on Streamlit's components v2 (inline HTML/JS/CSS, mounted in the page, no iframe, no npm
build). The annotation components on PyPI are v1 iframe components without relations, unmaintained
since 2023-24, and tokenise the text themselves; ours reuses the Extract page's rendering and reports
plain character offsets, which ``ner.annotation.add_span`` snaps to tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import streamlit as st

from app.rendering import CSS, Mark, highlight_html

STATIC = Path(__file__).parent / "static"
JS = (STATIC / "span_selector.js").read_text(encoding="utf-8")
SELECTOR_CSS = (
    ".ner-selector { cursor: text; user-select: text; } .ner-selector mark[data-span] { cursor: pointer; }"
)

_component = st.components.v2.component(
    "ner.span_selector", html=None, css=CSS + SELECTOR_CSS, js=JS, isolate_styles=False
)


def span_selector(
    text: str,
    marks: Iterable[Mark],
    *,
    key: str,
    on_select: Callable[[int, int], None],
    on_click: Callable[[int], None] | None = None,
    labels: int = 0,
    on_label: Callable[[int], None] | None = None,
) -> None:
    """Show ``text`` with ``marks``; call ``on_select(start, end)`` (code-point offsets into
    ``text``) when the annotator selects some of it, ``on_click(index)`` when they click a mark,
    and ``on_label(number)`` when they press a number key from 1 to ``labels`` (at most 9) outside
    any input field."""

    def selected() -> None:
        value = st.session_state[key].get("selection")
        if value:
            on_select(int(value["start"]), int(value["end"]))

    def clicked() -> None:
        value = st.session_state[key].get("clicked")
        if value is not None and on_click is not None:
            on_click(int(value))

    def numbered() -> None:
        value = st.session_state[key].get("label")
        if value is not None and on_label is not None:
            on_label(int(value))

    _component(
        key=key,
        data={"html": highlight_html(text, marks), "labels": min(labels, 9) if on_label else 0},
        on_selection_change=selected,
        on_clicked_change=clicked,
        on_label_change=numbered,
    )
