"""What the Models page says about a pipeline: its training tasks and its scores, from the files
training writes beside it (``meta.json``, ``metrics.json``).

``metrics.json`` holds, per split, ``{"entities": ..., "relations": ...}`` for a single-task run and
``{task: {"entities": ...}}`` for a multi-task one; :func:`split_scores` gives both the second shape.
Test scores exist when the run was evaluated on its test split (``test_raw_text``: the texts through
``nlp.pipe``, the headline; ``test``: each sentence's words given to the model directly, the
corpus's tokens or the pipeline tokenizer's, as ``training.tokenization`` said); dev scores are the
selected epoch's.
"""

from __future__ import annotations

import json
from pathlib import Path

import altair as alt
import pandas as pd

from app.pipelines import PipelineInfo

KINDS = {
    "entities": "Entities",
    "relations": "Relations",
    "relations_with_types": "Relations, entity types included",
}
#: raw text first (issue 13): the test set through nlp.pipe, scored on characters, is what users get
SPLITS = {
    "test_raw_text": "Test, raw text",
    "test": "Test, words given to the model",
    "dev": "Dev (selected epoch)",
}


def read_metrics(path: Path) -> dict:
    """The pipeline's ``metrics.json``, or ``{}`` when it has none or it cannot be read."""
    try:
        value = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def split_scores(metrics: dict, split: str, default_task: str) -> dict[str, dict[str, dict]]:
    """``{task: {kind: scores}}`` for ``split`` ("test_raw_text", "test" on the words the run gave the
    model, or "dev" of the selected epoch)."""
    if split in ("test_raw_text", "test"):
        raw = metrics.get(split) or {}
    else:
        best = metrics.get("best_epoch")
        epochs = [e for e in metrics.get("epochs", []) if e.get("epoch") == best]
        raw = epochs[0].get("dev", {}) if epochs else {}
    if "entities" in raw:
        return {metrics.get("config", {}).get("head_name") or default_task: raw}
    return {task: scores for task, scores in raw.items() if isinstance(scores, dict)}


def available_splits(metrics: dict, default_task: str) -> list[str]:
    return [split for split in SPLITS if split_scores(metrics, split, default_task)]


def summary_table(tasks: dict[str, dict], kind: str) -> pd.DataFrame:
    """Micro and macro P/R/F1 (percent) of ``kind`` (entities or relations) for every task."""
    rows = [
        {"task": task, "average": name, **_prf(scores[kind][name])}
        for task, scores in tasks.items()
        if kind in scores
        for name in ("micro", "macro")
        if name in scores[kind]
    ]
    return pd.DataFrame(rows, columns=["task", "average", "precision", "recall", "F1"])


def per_type_table(tasks: dict[str, dict], kind: str) -> pd.DataFrame:
    """One row per task and type: P/R/F1 (percent), the number of gold mentions, and a name for
    charts (the type, with its task when there are several tasks)."""
    several = sum(kind in scores for scores in tasks.values()) > 1
    rows = [
        {
            "task": task,
            "type": label,
            "name": f"{label} ({task})" if several else label,
            **_prf(values),
            "support": values.get("support"),
        }
        for task, scores in tasks.items()
        if kind in scores
        for label, values in sorted(scores[kind].get("per_type", {}).items())
    ]
    return pd.DataFrame(rows, columns=["task", "type", "name", "precision", "recall", "F1", "support"])


def _prf(values: dict) -> dict[str, float]:
    return {
        "precision": round(values.get("precision", 0.0), 2),
        "recall": round(values.get("recall", 0.0), 2),
        "F1": round(values.get("f1", 0.0), 2),
    }


def tasks_table(info: PipelineInfo, metrics: dict) -> pd.DataFrame:
    """The training tasks: head, data format and files, from meta.json (or metrics.json's config
    for pipelines trained before tasks were recorded)."""
    tasks = info.meta.get("training", {}).get("tasks") or _tasks_from_config(metrics.get("config", {}))
    rows = [
        {
            "task": task.get("name", ""),
            "head type": task.get("head", {}).get("type", "tagger"),
            "format": task.get("format", ""),
            "train": _files(task.get("train")),
            "dev": _files(task.get("dev")),
            "test": _files(task.get("test")),
        }
        for task in tasks
    ]
    return pd.DataFrame(rows, columns=["task", "head type", "format", "train", "dev", "test"])


def _tasks_from_config(config: dict) -> list[dict]:
    if "tasks" in config:
        return config["tasks"]
    data = config.get("data", {})
    if not data:
        return []
    return [{"name": config.get("head_name", ""), "head": config.get("head", {}), "format": "", **data}]


def _files(value) -> str:
    if value is None:
        return ""
    return ", ".join(value) if isinstance(value, list) else str(value)


def heads_table(info: PipelineInfo) -> pd.DataFrame:
    rows = [
        {
            "head": head.name,
            "type": head.type,
            "entity labels": ", ".join(head.entity_labels),
            "relation labels": ", ".join(head.relation_labels),
        }
        for head in info.heads
    ]
    return pd.DataFrame(rows, columns=["head", "type", "entity labels", "relation labels"])


def facts(info: PipelineInfo, metrics: dict) -> dict[str, str]:
    """Version, language, number of heads and training figures, as label → value."""
    epochs = metrics.get("epochs", [])
    seconds = sum(e.get("train_seconds", 0.0) for e in epochs)
    values = {
        "version": info.version or "–",
        "language": info.lang or "–",
        "heads": str(len(info.heads)),
        "best epoch": f"{metrics['best_epoch']} of {len(epochs)}" if "best_epoch" in metrics else "–",
        "training time": f"{seconds / 60:.0f} min" if seconds else "–",
    }
    return values


def overview_row(info: PipelineInfo, metrics: dict) -> dict:
    """One line of the pipelines overview: what it is and its headline micro F1 scores (mean over
    tasks), on the first split it was scored on: test on raw text, test on the words given to the
    model, dev."""
    default_task = info.heads[0].name if info.heads else ""
    splits = available_splits(metrics, default_task)
    row = {"pipeline": info.title, "description": info.summary, "scored on": "–", "entity F1": "–"}
    row["relation F1"] = "–"
    if splits:
        scores = split_scores(metrics, splits[0], default_task)
        row["scored on"] = SPLITS[splits[0]].lower()
        for kind, column in (("entities", "entity F1"), ("relations_with_types", "relation F1")):
            values = [s[kind]["micro"]["f1"] for s in scores.values() if kind in s]
            row[column] = f"{sum(values) / len(values):.2f}" if values else "–"
    return row


def project_note(metrics: dict) -> str:
    """What a pipeline trained on an annotation project learnt from ("" for any other)."""
    project = metrics.get("project")
    if not isinstance(project, dict):
        return ""
    which = "documents marked done" if project.get("documents") == "done" else "documents"
    start = "continued from" if project.get("continued") else "a fresh head on"
    return (
        f"Trained on the project `{Path(str(project.get('file', ''))).name}`: "
        f"{len(project.get('train', []))} {which} to train on, {len(project.get('dev', []))} for dev "
        f"(seed {project.get('seed')}); {start} `{project.get('base')}`."
    )


LEARNING_CURVE = Path(__file__).parents[1] / "benchmarks" / "results" / "learning_curve.json"


def learning_curve(path: Path = LEARNING_CURVE) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The measured learning curve (``benchmarks/learning_curve.py``): one row per training size
    and kind, and the shipped model's scores per kind; None when it has not been measured."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        kinds = {"entities": "entities", "relations_with_types": "relations"}
        points = pd.DataFrame(
            [
                {"documents": p["documents"], "kind": name, "F1": p["test_raw"][kind]}
                for p in result["points"]
                for kind, name in kinds.items()
            ]
        )
        shipped = pd.DataFrame(
            [{"kind": name, "F1": result["shipped"]["test_raw"][kind]} for kind, name in kinds.items()]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return points, shipped


def learning_curve_chart(points: pd.DataFrame, shipped: pd.DataFrame) -> alt.LayerChart:
    """F1 against annotated documents (log scale), the shipped model's F1 as dashed rules."""
    colour = alt.Color("kind:N", title=None)
    x = alt.X("documents:Q", scale=alt.Scale(type="log"), title="annotated documents")
    y = alt.Y("F1:Q", scale=alt.Scale(domain=[0, 100]), title="test F1 (%), raw text")
    lines = alt.Chart(points).mark_line(point=True).encode(x=x, y=y, color=colour, tooltip=list(points))
    rules = alt.Chart(shipped).mark_rule(strokeDash=[6, 4]).encode(y="F1:Q", color=colour)
    return (lines + rules).properties(height=320)
