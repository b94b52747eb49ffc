"""One graded run, start to finish: code and public data into the sandbox, predictions out,
scored on the trusted side against the hidden labels. Submissions, baselines and the
``grade`` command all go through ``evaluate``, so a baseline's score is comparable to a student's.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from numpy.typing import NDArray

from grader.metrics import MetricError, confusion_matrix, per_class_f1
from grader.models import Assignment, CodeKind, Dataset, FailureReason, RunStatus
from grader.services import dataset_file_load
from workers.jobs import JobResult, JobSpec, Limits, Outcome
from workers.notebook import NotebookError, notebook_to_script
from workers.predictions import InvalidOutput, read_predictions
from workers.sandbox import run_job

SCRIPT_NAME = "main.py"
MAX_CODE_BYTES = 1024 * 1024

OUTCOME_REASONS = {
    Outcome.TIMEOUT: FailureReason.TIMEOUT,
    Outcome.MEMORY: FailureReason.MEMORY,
    Outcome.CRASHED: FailureReason.CRASHED,
    Outcome.INFRASTRUCTURE: FailureReason.INFRASTRUCTURE,
}


@dataclass
class Evaluation:
    """What a run produced, ready to be saved on a ``Submission`` or ``BaselineRun``."""

    status: str
    failure_reason: str = ""
    message: str = ""
    public_score: float | None = None
    private_score: float | None = None
    per_class: list[dict[str, Any]] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    log: str = ""
    metrics: list[dict[str, Any]] = field(default_factory=list)
    device: str = ""
    duration_s: float = 0.0
    degraded: bool = False

    @property
    def scored(self) -> bool:
        return self.status == RunStatus.SCORED


class CodeInvalid(ValueError):
    """The submitted file cannot be run; the message says why, for the student."""


def script_for(*, code: str, kind: str) -> tuple[str, list[str]]:
    """The Python script to run and notes on what was changed (notebook conversion)."""
    if len(code.encode()) > MAX_CODE_BYTES:
        raise CodeInvalid(f"The code is larger than {MAX_CODE_BYTES // 1024} KB.")
    if kind == CodeKind.IPYNB:
        try:
            converted = notebook_to_script(code)
        except NotebookError as error:
            raise CodeInvalid(str(error)) from None
        if not converted.code_cells:
            raise CodeInvalid("The notebook has no code cells.")
        return converted.script, converted.notes
    return code, []


def _cache_dir() -> Path:
    path = Path(getattr(settings, "GRADER_CACHE_DIR", "") or tempfile.gettempdir()) / "datasets"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def dataset_task_files(dataset: Dataset) -> dict[str, Path]:
    """The dataset's public files on this worker's disk, fetched once from storage by sha256.

    Workers on other machines share only the database and the storage backend, so every worker
    keeps its own read-only copy, named by content so a new version never reuses an old file.
    """
    files = {}
    for public in dataset.public_files():
        target = _cache_dir() / f"{public.sha256}.npz"
        if not target.exists():
            with public.file.storage.open(str(public.file.name), "rb") as source:
                data = source.read()
            if hashlib.sha256(data).hexdigest() != public.sha256:
                raise RuntimeError(f"stored file {public.name} of {dataset} fails its checksum")
            partial = target.with_suffix(f".{os.getpid()}.part")
            partial.write_bytes(data)
            partial.chmod(0o444)
            partial.replace(target)  # atomic: concurrent workers never see half a file
        files[public.name] = target
    return files


def _per_class(matrix: NDArray[np.int64], dataset: Dataset) -> list[dict[str, Any]]:
    recall_denominator = matrix.sum(axis=1)
    precision_denominator = matrix.sum(axis=0)
    f1 = per_class_f1(matrix)
    rows = []
    for index in range(matrix.shape[0]):
        hits = int(matrix[index, index])
        rows.append(
            {
                "class": dataset.class_name(index),
                "support": int(recall_denominator[index]),
                "precision": hits / int(precision_denominator[index])
                if precision_denominator[index]
                else 0.0,
                "recall": hits / int(recall_denominator[index])
                if recall_denominator[index]
                else 0.0,
                "f1": float(f1[index]),
            }
        )
    return rows


def score(
    *, assignment: Assignment, dataset: Dataset, predictions: NDArray[np.generic]
) -> Evaluation:
    """Score predictions on the public and private rows; per-class figures on the public rows.

    Only public-split figures are shown before the due date, so the confusion matrix is built
    from the public rows too: it must not leak how a submission does on the private rows.
    """
    labels = dataset_file_load(dataset=dataset, part="test_labels")["y"]
    mask = assignment.public_test_mask()
    metric = assignment.metric_spec
    try:
        public = metric.compute(labels[mask], predictions[mask])
        private = metric.compute(labels[~mask], predictions[~mask])
        evaluation = Evaluation(status=RunStatus.SCORED, public_score=public, private_score=private)
        if metric.classification and dataset.n_classes:
            matrix = confusion_matrix(labels[mask], predictions[mask], dataset.n_classes)
            evaluation.confusion = matrix.tolist()
            evaluation.per_class = _per_class(matrix, dataset)
    except MetricError as error:
        return Evaluation(
            status=RunStatus.FAILED,
            failure_reason=FailureReason.INVALID_OUTPUT,
            message=f"The predictions cannot be scored with {metric.label}: {error}.",
        )
    return evaluation


def _sandbox_options() -> dict[str, Any]:
    return {
        "backend": getattr(settings, "GRADER_SANDBOX", "auto"),
        "allow_degraded": getattr(settings, "GRADER_ALLOW_DEGRADED", settings.DEBUG),
        "jobs_root": Path(settings.GRADER_JOBS_DIR)
        if getattr(settings, "GRADER_JOBS_DIR", "")
        else None,
    }


def evaluate(
    *,
    assignment: Assignment,
    dataset: Dataset,
    code: str,
    kind: str,
    job_id: str,
    wall_seconds: float | None = None,
    memory_mb: int | None = None,
    gpu_index: int | None = None,
    on_log: Callable[[str], None] | None = None,
    on_metric: Callable[[dict[str, Any]], None] | None = None,
    cancel: threading.Event | None = None,
) -> Evaluation:
    """Run code against the assignment's dataset in the sandbox and score what it predicts."""
    try:
        script, notes = script_for(code=code, kind=kind)
    except CodeInvalid as error:
        return Evaluation(
            status=RunStatus.FAILED, failure_reason=FailureReason.CRASHED, message=str(error)
        )
    spec = JobSpec(
        job_id=job_id,
        files={SCRIPT_NAME: script.encode()},
        entrypoint=SCRIPT_NAME,
        task_files=dataset_task_files(dataset),
        limits=Limits(
            wall_seconds=wall_seconds or assignment.wall_seconds,
            memory_mb=memory_mb or assignment.memory_mb,
        ),
        device="cuda" if assignment.needs_gpu else "cpu",
        gpu_index=gpu_index,
    )
    preface = "".join(f"[topdown] {note}\n" for note in notes)
    if on_log and preface:
        for line in preface.splitlines():
            on_log(line)
    result: JobResult = run_job(
        spec, on_log=on_log, on_metric=on_metric, cancel=cancel, **_sandbox_options()
    )
    try:
        evaluation = _evaluation_of(result, assignment=assignment, dataset=dataset)
    finally:
        result.cleanup()
    evaluation.log = preface + evaluation.log
    return evaluation


def _evaluation_of(result: JobResult, *, assignment: Assignment, dataset: Dataset) -> Evaluation:
    common: dict[str, Any] = {
        "log": result.log,
        "metrics": list(result.metrics),
        "device": result.device,
        "duration_s": result.duration_s,
        "degraded": result.degraded,
    }
    if result.outcome is Outcome.CANCELLED:
        return Evaluation(status=RunStatus.CANCELLED, message=result.message, **common)
    if result.outcome != Outcome.COMPLETED:
        return Evaluation(
            status=RunStatus.FAILED,
            failure_reason=OUTCOME_REASONS[result.outcome],
            message=result.message,
            **common,
        )
    try:
        predictions = read_predictions(
            result.output_dir / "predictions.npy", expected_rows=dataset.n_test
        )
    except InvalidOutput as error:
        return Evaluation(
            status=RunStatus.FAILED,
            failure_reason=FailureReason.INVALID_OUTPUT,
            message=str(error),
            **common,
        )
    evaluation = score(assignment=assignment, dataset=dataset, predictions=predictions)
    for name, value in common.items():
        setattr(evaluation, name, value)
    if evaluation.scored:
        metric = assignment.metric_spec
        evaluation.message = (
            f"Scored {metric.label.lower()} {evaluation.public_score:.4f} on the public test split."
        )
    return evaluation
