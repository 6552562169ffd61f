"""How ``init_from`` adds heads to a trained pipeline without damaging the heads it already has.

The pipeline's *old heads* are the heads of the ``init_from`` pipeline that this run's config does
not train. Their weights never receive the new task's gradient, but with plain fine-tuning
(``fine_tune``) the shared encoder they read moves for the new task, and their F1 can fall by many
points (issue 17). ``training.add_head_strategy`` chooses what protects them:

* ``frozen_encoder``: the encoder (and every branch) is frozen; only the new heads train. The old
  heads' outputs stay exactly the same; the new heads learn on fixed features.
* ``rehearsal``: the old heads keep training on their own data, read from the files their task
  records name (relative to this config's data root), mixed with the new tasks by the multi-task
  schedule. An old head whose files are missing is distilled instead, and the log says so.
* ``distill``: a frozen copy of the model as it was keeps the old heads' outputs on the new data
  close (:mod:`ner.distill`); no old data is needed.
* ``branch``: each new head gets its own copy of the encoder's top ``branch_layers`` layers
  (:mod:`ner.branches`), the shared encoder is frozen, and the old heads' outputs stay exactly the
  same; inference runs the shared encoder once plus each branch's layers once.

:func:`plan_addition` applies the choice to the model before training and returns an
:class:`Addition` that the training loop asks which encodings a step needs and what extra loss to
add; ``report()`` is what ``metrics.json`` records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor

from ner.alignment import Tokenizer
from ner.config import TrainConfig
from ner.corpora import CorpusError
from ner.distill import Distiller
from ner.encoder import Encoding, PieceBatch
from ner.metrics import Scores
from ner.model import ExtractionModel
from ner.tasks import TaskData, TaskError, TaskSettings

logger = logging.getLogger(__name__)

#: an old head whose dev F1 falls by more than this many points is named in a warning
MAX_OLD_HEAD_DROP = 1.0


@dataclass
class Addition:
    """What a strategy did to the model, and what it adds to each training step."""

    strategy: str
    new_heads: list[str] = field(default_factory=list)
    old_heads: list[str] = field(default_factory=list)
    rehearsed: list[TaskData] = field(default_factory=list)
    distiller: Distiller | None = None
    frozen_encoder: bool = False
    #: old head -> why it could not be rehearsed (it is distilled instead)
    fallbacks: dict[str, str] = field(default_factory=dict)

    def heads_for(self, task: str) -> list[str]:
        """The heads whose encodings a step of ``task`` needs: its own, and the distilled ones on
        new-task steps."""
        rehearsing = task in {data.name for data in self.rehearsed}
        if self.distiller is None or rehearsing:
            return [task]
        return [task] + [name for name in self.distiller.heads if name != task]

    def extra_loss(
        self, model: ExtractionModel, task: str, pieces: PieceBatch, encodings: dict[str, Encoding]
    ) -> Tensor | None:
        """The distillation loss on a new task's batch (None on rehearsal batches or without one)."""
        if self.distiller is None or task in {data.name for data in self.rehearsed}:
            return None
        return self.distiller.loss(model, pieces, encodings)

    def set_modes(self, model: ExtractionModel) -> None:
        """After ``model.train()``: frozen parts run as at inference (no dropout), so what the new
        heads learn on is what they will read, and distilled old heads give the teacher's outputs."""
        if self.frozen_encoder:
            model.encoder.eval()
        for name in self.distiller.heads if self.distiller is not None else ():
            model.heads[name].eval()
            if name in model.branches:
                model.branches[name].eval()

    def report(self) -> dict:
        """What ``metrics.json`` records about the addition."""
        report: dict = {
            "strategy": self.strategy,
            "new_heads": self.new_heads,
            "old_heads": self.old_heads,
            "rehearsed": [data.name for data in self.rehearsed],
            "distilled": self.distiller.heads if self.distiller is not None else [],
            "frozen_encoder": self.frozen_encoder,
        }
        if self.fallbacks:
            report["rehearsal_fallbacks"] = self.fallbacks
        if self.distiller is not None:
            report.update(
                distill_weight=self.distiller.weight, distill_temperature=self.distiller.temperature
            )
        return report


def plan_addition(
    config: TrainConfig,
    root: Path,
    model: ExtractionModel,
    inherited: list[dict],
    loaded_heads: set[str],
    tokenizer: Tokenizer | None,
) -> Addition:
    """Apply ``training.add_head_strategy`` to ``model`` (freezing, branches, the teacher copy) and
    return the :class:`Addition`. ``loaded_heads``: the heads the ``init_from`` pipeline had;
    ``inherited``: its task records. Without ``init_from`` nothing changes."""
    t = config.training
    strategy = t.add_head_strategy
    if config.init_from is None:
        return Addition("none")
    trained = {task.name for task in config.tasks}
    addition = Addition(
        strategy,
        new_heads=[task.name for task in config.tasks if task.name not in loaded_heads],
        old_heads=[name for name in model.heads if name in loaded_heads and name not in trained],
    )
    for name in addition.old_heads:  # never trained here, whatever the strategy (rehearsal re-enables)
        model.heads[name].requires_grad_(False)
        if name in model.branches:
            model.branches[name].requires_grad_(False)
    logger.info(
        "adding heads %s to a pipeline with heads %s: add_head_strategy = %r",
        addition.new_heads,
        addition.old_heads,
        strategy,
    )
    distilled: list[str] = []
    if strategy in ("frozen_encoder", "branch"):
        _freeze_encoder(model, addition)
    if strategy == "branch":
        for name in addition.new_heads:
            model.add_branch(name, t.branch_layers)
    elif strategy == "rehearsal":
        addition.rehearsed, addition.fallbacks = rehearsal_tasks(
            inherited, config, root, model, addition.old_heads, tokenizer
        )
        for data in addition.rehearsed:
            model.heads[data.name].requires_grad_(True)
        distilled = [name for name in addition.old_heads if name in addition.fallbacks]
    elif strategy == "distill":
        distilled = list(addition.old_heads)
    if distilled:
        addition.distiller = Distiller(model, distilled, t.distill_weight, t.distill_temperature, t.seed)
    return addition


def _freeze_encoder(model: ExtractionModel, addition: Addition) -> None:
    """No gradient to the shared encoder (nor to the old heads' branches): old heads' inputs stay."""
    model.encoder.requires_grad_(False)
    addition.frozen_encoder = True


def rehearsal_tasks(
    records: list[dict],
    config: TrainConfig,
    root: Path,
    model: ExtractionModel,
    old_heads: list[str],
    tokenizer: Tokenizer | None,
) -> tuple[list[TaskData], dict[str, str]]:
    """The old heads' own tasks, loaded from the files their records name, and, for each old head
    that cannot be rehearsed, why (logged as a warning: it is distilled instead)."""
    by_name = {record.get("name"): record for record in records}
    t = config.training
    tasks, fallbacks = [], {}
    for name in old_heads:
        reason = _missing_data(by_name.get(name), root)
        if reason is None:
            task = TaskSettings.model_validate(by_name[name])
            try:
                tasks.append(
                    TaskData(
                        task,
                        root,
                        schema=model.heads[name].schema,
                        max_train_docs=t.max_train_docs,
                        max_dev_docs=t.max_dev_docs,
                        tokenizer=tokenizer,
                    )
                )
                continue
            except (TaskError, CorpusError) as error:
                reason = str(error)
        fallbacks[name] = reason
        logger.warning(
            "rehearsal: head %r cannot be rehearsed: %s; it is kept by distillation instead "
            "(add_head_strategy = 'distill' for this head)",
            name,
            reason,
        )
    return tasks, fallbacks


def _missing_data(record: dict | None, root: Path) -> str | None:
    """Why a task record gives no training data under ``root`` (None: its files are all there)."""
    if record is None:
        return "the pipeline records no training data for it"
    try:
        task = TaskSettings.model_validate(record)
    except ValueError as error:
        return f"its task record is not valid ({error})"
    missing = [str(root / path) for _, path in task.files() if not (root / path).is_file()]
    if missing:
        return f"its data files are missing under the data root {root}: {', '.join(missing)}"
    return None


def old_head_changes(before: dict[str, dict[str, Scores]], after: dict[str, dict[str, Scores]]) -> dict:
    """Per old head: dev entity micro F1 before, after and the change, and for a SpERT head its
    typed-relation micro F1's too; a head that lost more than
    :data:`MAX_OLD_HEAD_DROP` points on either is flagged ``dropped`` and named in a warning."""
    changes = {}
    for name in before:
        first, last = before[name]["entities"].micro.f1, after[name]["entities"].micro.f1
        entry: dict = {"before": first, "after": last, "change": last - first}
        drops = {"entity": last - first}
        if "relations_with_types" in before[name]:  # SpERT: typed relations are its headline
            first = before[name]["relations_with_types"].micro.f1
            last = after[name]["relations_with_types"].micro.f1
            entry["typed_relations"] = {"before": first, "after": last, "change": last - first}
            drops["typed relation"] = last - first
        for what, figures in (("entity", entry), ("typed relation", entry.get("typed_relations"))):
            if figures is not None:
                logger.info(
                    "old head %s: dev %s F1 %.2f -> %.2f (%+.2f)",
                    name,
                    what,
                    figures["before"],
                    figures["after"],
                    figures["change"],
                )
        worst = min(drops, key=drops.__getitem__)
        entry["dropped"] = drops[worst] < -MAX_OLD_HEAD_DROP
        if entry["dropped"]:
            logger.warning(
                "old head %r lost %.2f dev %s F1 points in this run (more than %.1f): consider another "
                "training.add_head_strategy (frozen_encoder, rehearsal, distill or branch)",
                name,
                -drops[worst],
                worst,
                MAX_OLD_HEAD_DROP,
            )
        changes[name] = entry
    return changes
