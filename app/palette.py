"""One colour per label, the same in highlighted text, tables and charts.

Known labels get hand-picked pastel colours (black text stays readable on them, as in displaCy);
any other label gets a colour from the same palette chosen by a stable hash of its name, so a label
keeps its colour across pages, sessions and pipelines.
"""

from __future__ import annotations

import zlib

PALETTE = (
    "#aa9cfc", "#7aecec", "#ff9561", "#feca74", "#bfeeb7", "#ff8197", "#9cc9cc",
    "#c887fb", "#ffeb80", "#8fbcff", "#f0d0ff", "#bfe1d9", "#ffb3a7", "#d4e157",
)  # fmt: skip

KNOWN = {
    # CoNLL04 / CoNLL-2003 / WikiANN
    "peop": "#aa9cfc", "per": "#aa9cfc", "person": "#aa9cfc",
    "org": "#7aecec",
    "loc": "#ff9561", "gpe": "#feca74",
    "other": "#bfeeb7", "misc": "#bfeeb7",
    # biomedical
    "gene": "#8fbcff", "chemical": "#ffeb80", "disease": "#ff8197",
    # CoNLL04 relations
    "work_for": "#7aecec", "live_in": "#ff9561", "orgbased_in": "#feca74",
    "located_in": "#bfeeb7", "kill": "#ff8197",
}  # fmt: skip


def color(label: str) -> str:
    """The colour of ``label`` (case-insensitive)."""
    key = label.lower()
    return KNOWN.get(key) or PALETTE[zlib.crc32(key.encode("utf-8")) % len(PALETTE)]


def colors(labels: list[str]) -> dict[str, str]:
    """``{label: colour}`` for a chart's colour scale."""
    return {label: color(label) for label in labels}
