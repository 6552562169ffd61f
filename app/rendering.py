"""displaCy-style HTML for entities in text, and the relations as table rows and a graph.

We render the marks ourselves rather than with ``spacy.displacy``: its "ent" style cannot show
overlapping spans (several heads often tag the same words), and its "span" style re-joins tokens
with spaces (``Boston .``) and drops line breaks. Here the text is kept verbatim (``pre-wrap``),
overlapping spans nest (a span crossing another is split, its label on the last piece), and every
text run carries ``data-o``, its character offset in the Python string, so that the span-selection
component can map a mouse selection back to offsets without re-tokenising.
"""

from __future__ import annotations

import heapq
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from app.palette import color

CSS = (Path(__file__).parent / "static" / "highlight.css").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Mark:
    """A span to highlight: character offsets, label and what to say about it."""

    start: int
    end: int
    label: str
    score: float | None = None
    head: str | None = None
    suggested: bool = False
    index: int | None = None  # the span's index in its document, for the component's clicks
    last: bool = True  # False for the leading pieces of a split span: the label goes on the last


def highlight_html(text: str, marks: Iterable[Mark], *, show_heads: bool = False) -> str:
    """``text`` with ``marks`` highlighted, as one ``<div class="ner-text">``."""
    tree = _tree(_nested_pieces(m for m in marks if 0 <= m.start < m.end <= len(text)))
    body = _render(text, 0, len(text), tree, show_heads)
    return f'<div class="ner-text">{body}</div>'


def stylesheet() -> str:
    """The marks' stylesheet, put in every page once (``app/main.py``)."""
    return f"<style>{CSS}</style>"


def legend_html(labels: Iterable[str]) -> str:
    """The labels as coloured chips, in the order given."""
    chips = "".join(
        f'<span class="ner-chip" style="background:{color(label)}">{html.escape(label)}</span>'
        for label in labels
    )
    return f'<div class="ner-legend">{chips}</div>'


def _nested_pieces(marks: Iterable[Mark]) -> list[Mark]:
    """Split marks that cross another so that any two pieces are nested or disjoint."""
    queue = [((m.start, -m.end, n), m) for n, m in enumerate(marks)]
    heapq.heapify(queue)
    done: list[Mark] = []
    open_: list[Mark] = []
    serial = len(queue)
    while queue:
        _, mark = heapq.heappop(queue)
        while open_ and open_[-1].end <= mark.start:
            open_.pop()
        if open_ and mark.end > open_[-1].end:  # crosses the enclosing piece: cut at its end
            cut = open_[-1].end
            rest = replace(mark, start=cut)
            heapq.heappush(queue, ((rest.start, -rest.end, serial), rest))
            serial += 1
            mark = replace(mark, end=cut, last=False)
        done.append(mark)
        open_.append(mark)
    return done


_Node = tuple[Mark, list]


def _tree(pieces: list[Mark]) -> list[_Node]:
    """Nested pieces (sorted by start, longest first) as a forest."""
    roots: list[_Node] = []
    stack: list[_Node] = []
    for piece in pieces:
        while stack and stack[-1][0].end <= piece.start:
            stack.pop()
        node: _Node = (piece, [])
        (stack[-1][1] if stack else roots).append(node)
        stack.append(node)
    return roots


def _render(text: str, lo: int, hi: int, nodes: list[_Node], show_heads: bool) -> str:
    out, position = [], lo
    for mark, children in nodes:
        out.append(_run(text, position, mark.start))
        inner = _render(text, mark.start, mark.end, children, show_heads)
        out.append(_mark(mark, inner, show_heads))
        position = mark.end
    out.append(_run(text, position, hi))
    return "".join(out)


def _run(text: str, start: int, end: int) -> str:
    """Plain text from ``start`` to ``end``, in runs that each end at a carriage return: HTML parsing
    turns a CR LF pair into one LF, which would shift the offsets counted in the browser."""
    out = []
    for piece in re.split(r"(?<=\r)", text[start:end]):
        if piece:
            out.append(f'<span data-o="{start}">{html.escape(piece)}</span>')
            start += len(piece)
    return "".join(out)


def _mark(mark: Mark, inner: str, show_heads: bool) -> str:
    label = html.escape(mark.label)
    details = [mark.label]
    if mark.score is not None:
        details.append(f"score {mark.score:.2f}")
    if mark.head:
        details.append(f"head {mark.head}")
    if mark.suggested:
        details.append("suggestion")
    badge = ""
    if mark.last:
        score = f'<span class="ner-score">{mark.score:.2f}</span>' if mark.score is not None else ""
        head = f'<span class="ner-head">{html.escape(mark.head)}</span>' if show_heads and mark.head else ""
        badge = f'<span class="ner-label">{label}{score}{head}</span>'
    classes = "ner-mark ner-suggested" if mark.suggested else "ner-mark"
    index = f' data-span="{mark.index}"' if mark.index is not None else ""
    title = html.escape(" · ".join(details), quote=True)
    return (
        f'<mark class="{classes}" style="--ner-color:{color(mark.label)}"{index} title="{title}"'
        f' data-start="{mark.start}" data-end="{mark.end}">{inner}{badge}</mark>'
    )


def chip_html(text: str, label: str, suggested: bool = False, note: str | None = None) -> str:
    """A short text on its label's colour (table cells); a suggestion is paler, with a dashed edge.
    ``note`` (e.g. the label, and offsets) is shown after the text as a mark's label badge is."""
    classes = "ner-mark ner-suggested" if suggested else "ner-mark"
    badge = f'<span class="ner-label">{html.escape(note)}</span>' if note else ""
    return f'<mark class="{classes}" style="--ner-color:{color(label)}">{html.escape(text)}{badge}</mark>'


# ------------------------------------------------------------------------------------- relations
def relation_rows(record: dict) -> list[dict]:
    """The record's relations as table rows: head text, label, tail text, score."""
    entities = record["entities"]
    return [
        {
            "head": entities[r["head"]]["text"],
            "head label": entities[r["head"]]["label"],
            "relation": r["label"],
            "tail": entities[r["tail"]]["text"],
            "tail label": entities[r["tail"]]["label"],
            "score": r["score"],
        }
        for r in record["relations"]
    ]


def relation_graph(record: dict, limit: int = 80) -> str:
    """Graphviz DOT of the ``limit`` best-scored relations and their entities, coloured by label
    (a graph of thousands of edges is unreadable, and slow to lay out in the browser)."""
    entities = record["entities"]
    relations = sorted(record["relations"], key=lambda r: -(r.get("score") or 0.0))[:limit]
    used = sorted({r["head"] for r in relations} | {r["tail"] for r in relations})
    lines = [
        "digraph relations {",
        '  graph [rankdir=LR, bgcolor="transparent", pad=0.2, nodesep=0.35];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=16, color="#00000022"];',
        '  edge [fontname="Helvetica", fontsize=13, color="#555555", fontcolor="#333333"];',
    ]
    for i in used:
        entity = entities[i]
        label = _dot(f"{entity['text']}\n{entity['label']}")
        lines.append(f'  e{i} [label="{label}", fillcolor="{color(entity["label"])}"];')
    for r in relations:
        score = f" {r['score']:.2f}" if r.get("score") is not None else ""
        lines.append(f'  e{r["head"]} -> e{r["tail"]} [label="{_dot(r["label"] + score)}"];')
    lines.append("}")
    return "\n".join(lines)


def _dot(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
