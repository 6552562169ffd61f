"""Training runs started from the app: a background ``ner train --project`` whose state is files.

A page reload, another browser, even a restart of the app finds a run again, because everything
about it lives in its folder ``<data folder>/training/<id>/``:

* ``snapshot/<project file name>``: the copy it trains on (the project file itself is read once,
  never written, so the annotator can go on working while it trains);
* ``job.json``: the project, the settings, the command, the process id and the pipeline folder;
* ``progress.jsonl``: what the training reports (:class:`ner.project_training.ProgressLog`);
* ``log.txt``: its output; ``exit_code``: written when it ends; ``cancelled``: when cancelled.

The pipeline goes to ``<data folder>/models/<id>/``, renamed there only once it is complete, so
the app's pipeline list (:mod:`app.pipelines`) never offers a half-trained one. The process runs
in a session of its own: cancelling stops its whole process group, and closing the app does not.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ner
from app.pipelines import MODELS
from ner.annotation import AnnotationStore
from ner.files import read_json_object, write_atomic
from ner.project_training import ProjectTraining, partial_folder, pipeline_name, split_documents

JOBS = "training"
SNAPSHOT = "snapshot"  # folder of the copy trained on; the file keeps the project's name, which
# the pipeline's metrics.json then records (its card says which project it learnt from)
STATES = ("running", "done", "failed", "cancelled")
_CHILDREN: dict[str, subprocess.Popen] = {}  # started by this server: polled so they are reaped
# The wrapper records the exit status (atomically) for whoever looks later.
_WRAPPER = '"$@"; code=$?; echo $code > exit_code.tmp && mv exit_code.tmp exit_code; exit $code'


def models_folder(data: Path) -> Path:
    """Where the app's trained pipelines are written."""
    return data / MODELS  # where app.pipelines looks for them


@dataclass
class Progress:
    """A run's state and figures, read from its files."""

    state: str
    epoch: int = 0
    epochs: int = 0
    done: int = 0
    total: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per finished epoch
    seconds_left: float | None = None
    message: str = ""
    split: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


class Job:
    """One training run, known by its folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.info: dict[str, Any] = read_json_object(folder / "job.json")

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def project(self) -> Path:
        return Path(self.info.get("project", ""))

    @property
    def output(self) -> Path:
        return Path(self.info.get("output", ""))

    @property
    def started(self) -> float:
        return float(self.info.get("started", 0.0))

    def state(self) -> str:
        """``running``, ``done``, ``failed`` or ``cancelled``."""
        child = _CHILDREN.get(self.id)
        if child is not None:
            child.poll()  # reaps it when it has ended, so it does not linger as a zombie
        code = _read_text(self.folder / "exit_code")
        if code is not None:
            return "done" if code == "0" and (self.output / "meta.json").is_file() else "failed"
        if (self.folder / "cancelled").exists():
            return "cancelled"
        return "running" if _alive(int(self.info.get("pid", 0))) else "failed"

    def events(self) -> list[dict[str, Any]]:
        """The progress file's events; a line being written (no newline yet) is left for later."""
        try:
            text = (self.folder / "progress.jsonl").read_text(encoding="utf-8")
        except OSError:
            return []
        events = []
        for line in text.split("\n")[:-1]:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events

    def progress(self, now: float | None = None) -> Progress:
        return summarise(self.events(), self.state(), now or time.time(), self.failure)

    def failure(self) -> str:
        """Why the run failed: its error event, else the last lines of its log."""
        errors = [e["message"] for e in self.events() if e.get("event") == "error" and e.get("message")]
        if errors:
            return errors[-1]
        lines = [line for line in (_read_text(self.folder / "log.txt") or "").splitlines() if line.strip()]
        return "\n".join(lines[-5:]) or "the training process ended without saying why"


def summarise(events: list[dict], state: str, now: float, failure=lambda: "") -> Progress:
    """The state and figures that ``events`` (a progress file's) add up to at time ``now``."""
    progress = Progress(state)
    steps = [e for e in events if e.get("event") in ("step", "epoch")]
    for event in events:
        progress.epochs = int(event.get("epochs", progress.epochs))
        if event.get("event") == "split":
            progress.split = {k: event.get(k) for k in ("train", "dev", "base")}
        elif event.get("event") == "epoch":
            progress.history.append(
                {
                    "epoch": event["epoch"],
                    "loss": event.get("loss"),
                    "dev entity F1": event.get("dev_entity_f1"),
                    "dev relation F1": event.get("dev_primary"),
                }
            )
    if steps:
        last = steps[-1]
        progress.epoch, progress.done, progress.total = last["epoch"], last["done"], last["total"]
        progress.seconds_left = _seconds_left(steps, now) if state == "running" else None
    if state == "failed":
        progress.message = failure()
    return progress


def _seconds_left(steps: list[dict], now: float) -> float | None:
    """The time per step so far (evaluations included) times the steps still to go, less the time
    since the last report; None until two steps have been reported."""
    first, last = steps[0], steps[-1]
    if last["done"] <= first["done"]:
        return None
    per_step = (last["time"] - first["time"]) / (last["done"] - first["done"])
    return max(0.0, per_step * (last["total"] - last["done"]) - (now - last["time"]))


def jobs(data: Path) -> list[Job]:
    """Every run in the data folder, the latest first."""
    folder = data / JOBS
    found = [Job(p) for p in folder.iterdir() if (p / "job.json").is_file()] if folder.is_dir() else []
    return sorted(found, key=lambda job: job.started, reverse=True)


def latest(data: Path, project: Path) -> Job | None:
    """The latest run on ``project``, or None."""
    return next((job for job in jobs(data) if job.project == project), None)


def start(
    project: Path,
    data: Path,
    settings: ProjectTraining,
    overrides: dict[str, Any] | None = None,
) -> Job:
    """Snapshot ``project`` (a project file in ``data``), check that it has enough documents to
    train on (an :class:`~ner.annotation.AnnotationError` otherwise, before anything starts), and
    start the training in the background."""
    store = AnnotationStore.open(project)
    split_documents(store.project, settings)  # too few documents: refused here, not in the log
    folder = _new_folder(data / JOBS, store.project.name)
    snapshot = folder / SNAPSHOT / project.name
    snapshot.parent.mkdir()
    write_atomic(snapshot, project.read_bytes())
    output = models_folder(data) / folder.name
    command = _command(snapshot, output, settings, overrides or {})
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(ner.__file__).parents[1]), env.get("PYTHONPATH")) if p
    )
    info = {
        "project": str(project),
        "settings": settings.model_dump(),
        "overrides": overrides or {},
        "output": str(output),
        "command": command,
        "started": time.time(),
    }
    with open(folder / "log.txt", "wb") as log:
        child = subprocess.Popen(
            ["/bin/sh", "-c", _WRAPPER, "sh", *command],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: cancel stops all of it, a reload none
        )
    _CHILDREN[folder.name] = child
    write_atomic(folder / "job.json", json.dumps({**info, "pid": child.pid}, indent=1).encode("utf-8"))
    return Job(folder)


def _command(snapshot: Path, output: Path, settings: ProjectTraining, overrides: dict) -> list[str]:
    command = [sys.executable, "-m", "ner.cli", "train", "--project", str(snapshot), "--output", str(output)]
    command += ["--base", settings.base, "--epochs", str(settings.epochs), "--seed", str(settings.seed)]
    command += ["--dev-fraction", str(settings.dev_fraction), "--progress-file", "progress.jsonl", "--quiet"]
    if settings.documents == "all":
        command.append("--all-documents")
    for key, value in overrides.items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    return command


def _new_folder(parent: Path, name: str) -> Path:
    """``<parent>/<name>-<date>-<time>``, made now (with a counter if that exists)."""
    stem = f"{pipeline_name(name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    parent.mkdir(parents=True, exist_ok=True)
    for count in range(1, 1000):
        folder = parent / (stem if count == 1 else f"{stem}-{count}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"{parent}: too many runs named {stem}")


def cancel(job: Job, grace: float = 5.0) -> None:
    """Stop a running job (its whole process group: SIGTERM, then SIGKILL after ``grace`` s) and
    remove what it had written of its pipeline; the project file was never touched."""
    if job.state() != "running":
        return
    (job.folder / "cancelled").write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"), encoding="utf-8")
    pid = int(job.info.get("pid", 0))
    _signal_group(pid, signal.SIGTERM)
    if not _group_ended(job, pid, grace):  # every process of the group, not only its leader
        _signal_group(pid, signal.SIGKILL)
        _group_ended(job, pid, grace)
    child = _CHILDREN.pop(job.id, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=grace)  # reaped: no zombie left in the process table
    shutil.rmtree(partial_folder(job.output), ignore_errors=True)


def _group_ended(job: Job, pid: int, seconds: float) -> bool:
    """Wait up to ``seconds`` for every process of group ``pid`` to end (the leader, if this app
    started it, reaped as it ends); whether none is left."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        child = _CHILDREN.get(job.id)
        if child is not None:
            child.poll()
        if not _group_alive(pid):
            return True
        time.sleep(0.1)
    return not _group_alive(pid)


def _group_alive(pid: int) -> bool:
    """Whether a process of group ``pid`` still runs (zombies do not: they have ended)."""
    if pid <= 0:
        return False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pid and fields[0] != "Z":
            return True
    return False if Path("/proc/self/stat").exists() else _alive(pid)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)  # the wrapper leads the group: start_new_session


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _read_text(Path(f"/proc/{pid}/stat"))
    return stat is None or stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
