"""The training loop: seeded, AdamW with linear warm-up and decay, dev evaluation every epoch.

One loop serves one task (SpERT on CoNLL04) and many (MT-BioNER): every step is one batch of one
task (:mod:`ner.schedule` orders them), encoded by the shared encoder and scored by that task's
head alone. The best epoch (by the mean over tasks of dev typed-relation F1 for SpERT heads and
entity F1 for taggers, then mean entity F1) is written as a spaCy pipeline as soon as it is
reached, so a run that is stopped still leaves its best model; ``metrics.json`` records every epoch.
``init_from`` continues from a trained pipeline: its heads are kept, new tasks add heads, and the
dev F1 of the heads it already had is reported before and after (with a warning naming a head that
lost more than a point); ``training.add_head_strategy`` says how those heads are protected
(:mod:`ner.add_strategies`).
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from spacy.language import Language
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from ner.add_strategies import Addition, old_head_changes, plan_addition
from ner.alignment import Tokenizer
from ner.config import ConfigError, TrainConfig
from ner.corpora import CorpusError
from ner.encoder import OFFLINE_ENCODERS, Encoder
from ner.evaluation import Evaluation, evaluate_model, evaluate_pipeline, primary_score
from ner.heads import build_head
from ner.metrics import Scores
from ner.model import WORD_EMBEDDINGS, ExtractionModel
from ner.pipeline import build_pipeline, extractor_model, load, pipeline_tokenizer, save
from ner.provenance import peak_rss_mb, provenance
from ner.schedule import epoch_schedule, length_bucketed_batches
from ner.tasks import TaskData, TaskError, TaskSettings

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def parameter_groups(model: ExtractionModel, weight_decay: float, lr: float, head_lr: float) -> list[dict]:
    """Encoder and heads at their own learning rates; no decay for biases and LayerNorms (as
    SpERT) nor for word embeddings.

    Word-embedding rows of pieces never seen in training then stay bit-identical to the base
    encoder, which is what lets the ``delta`` storage skip them.
    """
    groups: dict[tuple[float, float], list] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        plain = "bias" in name or "LayerNorm" in name or name.endswith(WORD_EMBEDDINGS)
        rate = head_lr if name.startswith("heads.") else lr
        groups.setdefault((rate, 0.0 if plain else weight_decay), []).append(parameter)
    return [{"params": p, "lr": rate, "weight_decay": decay} for (rate, decay), p in groups.items()]


def epoch_batches(
    tasks: list[TaskData], sizes: dict[str, int], max_words: int | None, rng: random.Random
) -> dict[str, list[list]]:
    """One epoch's length-bucketed training batches of every task."""
    return {
        d.name: length_bucketed_batches(
            d.train, [len(doc.words) for doc in d.train], sizes[d.name], rng, max_words
        )
        for d in tasks
    }


def copy_of(rng: random.Random) -> random.Random:
    twin = random.Random()
    twin.setstate(rng.getstate())
    return twin


def build_model(config: TrainConfig) -> tuple[ExtractionModel, list[dict]]:
    """The model training starts from, and the task records of its heads (``init_from``'s, or none)."""
    if config.init_from is not None:
        try:
            nlp = load(config.init_from, whole=True)  # trains on: every weight, unrounded
        except (OSError, ValueError, RuntimeError) as error:
            raise ConfigError(f"init_from {config.init_from}: cannot load the pipeline: {error}") from error
        return extractor_model(nlp), list(nlp.meta.get("training", {}).get("tasks", []))
    return ExtractionModel(load_encoder(config), {}, config.encoder.name), []


def load_encoder(config: TrainConfig) -> Encoder:
    """The configured base encoder; a name that is no installed alias, model folder or cached hub
    model is a :class:`ConfigError` saying which of these it was taken for."""
    name = config.encoder.name
    try:
        return Encoder.from_pretrained(name, window=config.encoder.window, overlap=config.encoder.overlap)
    except (OSError, ValueError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"encoder {name!r} cannot be loaded: {_encoder_hint(name)} ({reason})") from error


def _encoder_hint(name: str) -> str:
    if Path(name).is_dir():
        return f"the folder {name} does not hold a Hugging Face model and tokenizer"
    if Path(name).exists():
        return f"{name} is a file; give a model folder, a hub name or an alias"
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    where = (
        "in the Hugging Face cache (offline mode: HF_HUB_OFFLINE=0 allows downloads)"
        if offline
        else "on the hub"
    )
    return f"it is not an offline alias ({', '.join(OFFLINE_ENCODERS)}), not a folder, and not {where}"


def training_tokenizer(config: TrainConfig) -> Tokenizer | None:
    """The tokenizer of the pipeline this run saves (:func:`_save` builds it for ``export.lang``,
    with or without ``init_from``), or None to train on the corpus's own tokens."""
    if config.training.tokenization == "corpus":
        return None
    return pipeline_tokenizer(config.export.lang)


def alignment_reports(tasks: list[TaskData]) -> dict[str, list[dict]]:
    """Per task, what moving each file's gold onto the pipeline's tokens did (``metrics.json``)."""
    return {data.name: data.alignment for data in tasks if data.alignment}


def prepare_tasks(config: TrainConfig, root: Path, model: ExtractionModel) -> list[TaskData]:
    """Load every task's data and give each new task a fresh head; an existing head's labels must
    match its task's files."""
    t, tokenizer = config.training, training_tokenizer(config)
    tasks = []
    for task in config.tasks:
        existing = model.heads[task.name] if task.name in model.heads else None  # noqa: SIM401 (ModuleDict)
        data = TaskData(
            task,
            root,
            schema=existing.schema if existing is not None else None,
            max_train_docs=t.max_train_docs,
            max_dev_docs=t.max_dev_docs,
            tokenizer=tokenizer,
        )
        if existing is None:
            model.heads[task.name] = build_head(task.head, model.encoder.hidden_size, data.schema)
        elif existing.config.type != task.head.type:
            raise TaskError(
                f"task {task.name!r}: the pipeline's head is a {existing.config.type}, the config asks "
                f"for a {task.head.type}; rename the task to add a new head"
            )
        tasks.append(data)
    return tasks


def monitored_tasks(
    records: list[dict], config: TrainConfig, root: Path, model, loaded: Sequence[str] = ()
) -> list[TaskData]:
    """Dev sets of heads inherited from ``init_from`` that this run does not train, found through the
    task records saved in the pipeline (paths relative to the data root); ``loaded``: tasks whose
    data is already loaded (rehearsal), left out. Heads whose dev file is not there are skipped
    with a warning."""
    trained = {task.name for task in config.tasks} | set(loaded)
    tokenizer = training_tokenizer(config)
    monitored = []
    for record in records:
        task = TaskSettings.model_validate(record)
        if task.name in trained or task.name not in model.heads or task.dev is None:
            continue
        if not (root / task.dev).is_file():
            logger.warning("not monitoring head %r: its dev file %s is missing", task.name, root / task.dev)
            continue
        try:
            data = TaskData(
                task,
                root,
                splits=("dev",),
                schema=model.heads[task.name].schema,
                max_dev_docs=config.training.max_dev_docs,
                tokenizer=tokenizer,
            )
        except (TaskError, CorpusError) as error:  # reporting only: it must not stop the run
            logger.warning("not monitoring head %r: %s", task.name, error)
            continue
        monitored.append(data)
    return monitored


def check_output(output: Path) -> None:
    """Create the pipeline folder now, so a path that cannot be written fails before training,
    not when the first epoch's pipeline is saved."""
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"output {output}: cannot create the pipeline folder: {error.strerror or error}"
        ) from None
    if not os.access(output, os.W_OK | os.X_OK):
        raise ConfigError(f"output {output}: the folder is not writable")


def evaluate_tasks(
    model: ExtractionModel, tasks: list[TaskData], split: str, batch_size: int
) -> dict[str, dict[str, Scores]]:
    """Scores of every task's head on that task's ``split`` (tasks without that split are left out)."""
    return {
        data.name: evaluate_model(model, getattr(data, split), data.name, batch_size)
        for data in tasks
        if getattr(data, split)
    }


def selection_key(scores: dict[str, dict[str, Scores]]) -> tuple[float, float]:
    """Mean over tasks of the primary score (typed-relation F1 for SpERT, entity F1 for taggers),
    then mean entity F1."""
    primary = [primary_score(s) for s in scores.values()]
    entities = [s["entities"].micro.f1 for s in scores.values()]
    return sum(primary) / len(primary), sum(entities) / len(entities)


def _as_dict(scores: dict[str, dict[str, Scores]]) -> dict:
    return {task: {name: s.as_dict() for name, s in by_name.items()} for task, by_name in scores.items()}


StepHook = Callable[[str, ExtractionModel], None]


def train(
    config: TrainConfig,
    config_dir: Path,
    output: Path | None = None,
    progress: bool = True,
    on_step: StepHook | None = None,
) -> dict:
    """Train the configured tasks on one shared encoder and write the best epoch's pipeline and
    ``metrics.json`` to ``output``.

    Each step takes one batch of one task; its loss reaches that task's head and the encoder only.
    ``on_step(task, model)`` runs after each backward pass, before the optimiser step (tests use it
    to check where gradients went).
    """
    run_started = time.perf_counter()
    output = Path(output or config.output)
    t = config.training
    seed_everything(t.seed)
    if t.threads:
        torch.set_num_threads(t.threads)
    root = config.root(config_dir)
    model, inherited = build_model(config)
    old_heads = set(model.heads)
    tasks = prepare_tasks(config, root, model)
    try:
        if config.encoder.num_layers is not None:
            if len(model.branches):
                raise ValueError("num_layers cannot cut the encoder of a pipeline with branched heads")
            model.encoder.keep_layers(config.encoder.num_layers)
        model.encoder.freeze(config.encoder.freeze_word_embeddings, config.encoder.freeze_layers)
    except ValueError as error:
        raise ConfigError(f"encoder {config.encoder.name!r}: {error}") from error
    addition = _plan_addition(config, root, model, inherited, old_heads)
    tasks += addition.rehearsed
    rehearsed = [d.name for d in addition.rehearsed]
    monitored = monitored_tasks(inherited, config, root, model, rehearsed)
    monitored += [d for d in tasks if d.name in old_heads]
    check_output(output)
    before = evaluate_tasks(model, monitored, "dev", t.eval_batch_size) if monitored else {}
    alignment = {"alignment": alignment_reports(tasks + monitored)}
    if config.init_from is not None:
        alignment["add_head"] = addition.report()
    records = _task_records(inherited, config)
    rng = random.Random(t.seed)
    sizes = {d.name: d.task.batch_size or t.batch_size for d in tasks}
    # The schedule's length: epoch 1's batches, drawn from a copy of the generator (a word budget
    # makes the count depend on the draw; later epochs differ by at most a few batches).
    steps = t.epochs * sum(map(len, epoch_batches(tasks, sizes, t.max_batch_words, copy_of(rng)).values()))
    groups = parameter_groups(model, t.weight_decay, t.learning_rate, t.head_learning_rate or t.learning_rate)
    optimizer = torch.optim.AdamW(groups, lr=t.learning_rate, fused=True)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(t.warmup * steps), steps)
    history, best = [], None
    for epoch in range(1, t.epochs + 1):
        model.train()
        addition.set_modes(model)
        started, total_loss, total_words = time.perf_counter(), 0.0, 0
        per_task = epoch_batches(tasks, sizes, t.max_batch_words, rng)
        schedule = epoch_schedule(per_task, t.sampling, rng, t.temperature)
        bar = tqdm(schedule, desc=f"epoch {epoch}/{t.epochs}", disable=not progress, unit="batch")
        for task, batch in bar:
            head = model.heads[task]
            targets = head.targets(batch, rng)
            pieces = model.encoder.tokenize([doc.words for doc in batch])
            encodings = model.encode(pieces, addition.heads_for(task))
            loss = head.loss(encodings[task], targets)
            extra = addition.extra_loss(model, task, pieces, encodings)
            if extra is not None:
                loss = loss + extra
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if on_step is not None:
                on_step(task, model)
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            optimizer.step()
            scheduler.step()
            total_loss += loss.item()
            total_words += sum(len(doc.words) for doc in batch)
            bar.set_postfix(loss=f"{loss.item():.3f}", task=task)
        seconds = time.perf_counter() - started
        record = {
            "epoch": epoch,
            "loss": total_loss / max(1, len(schedule)),
            "train_seconds": round(seconds, 1),
            "train_words_per_second": round(total_words / seconds, 1),
        }
        scores = evaluate_tasks(model, tasks, "dev", t.eval_batch_size)
        if scores:
            record["dev"] = _as_dict(scores)
            record["dev_selection"] = selection_key(scores)
        if best is None or not scores or selection_key(scores) > best[0]:
            best = (selection_key(scores) if scores else (0.0, 0.0), epoch)
            _save(model, config, output, {"best_epoch": epoch, "tasks": records})
        history.append(record)
        logger.info("epoch %d: %s", epoch, {k: v for k, v in record.items() if k != "dev"})
        _write_metrics(output, config, {**alignment, "epochs": history, "best_epoch": best[1]})
    result: dict = {**alignment, "epochs": history, "best_epoch": best[1]}
    saved = load(output)  # the best epoch's pipeline, as a user loads it
    best_model = extractor_model(saved)
    if monitored:
        after = evaluate_tasks(best_model, monitored, "dev", t.eval_batch_size)
        result["old_heads_dev_f1"] = old_head_changes(before, after)  # logged, with warnings
    test = evaluate_tasks(best_model, tasks, "test", t.eval_batch_size)
    if test:
        tested = [data for data in tasks if data.name in test]
        result["test_raw_text"] = raw_text_test_scores(saved, root, tested, t.eval_batch_size)
        result["test"] = _as_dict(test)
    result["wall_seconds"] = round(time.perf_counter() - run_started, 1)  # loading to test scores
    _write_metrics(output, config, result)
    return result


def _plan_addition(
    config: TrainConfig, root: Path, model: ExtractionModel, inherited: list[dict], loaded: set[str]
) -> Addition:
    """:func:`plan_addition`, with a setting it cannot apply reported as a :class:`ConfigError`."""
    try:
        return plan_addition(config, root, model, inherited, loaded, training_tokenizer(config))
    except ValueError as error:
        strategy = config.training.add_head_strategy
        raise ConfigError(f"training.add_head_strategy = {strategy!r}: {error}") from error


def raw_text_test_scores(nlp: Language, root: Path, tasks: list[TaskData], batch_size: int) -> dict:
    """Each trained head's test split under the raw-text protocol, on ``nlp``, the saved pipeline
    loaded as a user loads it: what ``nlp(text)`` gives, the headline figure. (``test`` is scored on
    the pipeline's tokens given directly, or on the corpus's with ``tokenization = "corpus"``.)

    The gold is read as ``ner evaluate`` reads it, but only for ``tasks``: the heads a pipeline
    inherited and this run did not train may have no data here (their scores are not this run's)."""
    evaluation = Evaluation()
    for data in tasks:
        if data.task.test is not None:
            gold = TaskData(data.task, root, splits=("test",), schema=data.schema)
            evaluate_pipeline(nlp, gold.test, data.name, ("raw",), batch_size, into=evaluation)
    return evaluation.as_dict().get("raw", {})


def _task_records(inherited: list[dict], config: TrainConfig) -> list[dict]:
    """What the pipeline remembers about its heads' data (for ``init_from`` and ``ner evaluate``):
    the inherited records, replaced by this run's tasks of the same name."""
    trained = {task.name for task in config.tasks}
    kept = [record for record in inherited if record.get("name") not in trained]
    return kept + [task.model_dump(mode="json", exclude_none=True) for task in config.tasks]


def _save(model: ExtractionModel, config: TrainConfig, output: Path, meta: dict) -> None:
    e = config.export
    nlp = build_pipeline(model, e.lang, e.pipeline_name, e.storage, e.dtype, meta={"training": meta})
    save(nlp, output)


def _write_metrics(output: Path, config: TrainConfig, result: dict) -> None:
    """``metrics.json``: the config, what made the run (command, commit, threads, peak memory so
    far), then the result, rewritten after every epoch."""
    output.mkdir(parents=True, exist_ok=True)
    run = {**provenance(), "torch_threads": torch.get_num_threads(), "peak_rss_mb": peak_rss_mb()}
    data = {"config": config.model_dump(mode="json"), "run": run, **result}
    (output / "metrics.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
