"""Services for graded runs: submissions and baseline runs, from queued to scored or failed.

The database is the source of truth; the broker only carries "please look at run N". A worker
claims a run with a conditional update (``queued`` → ``running``) and holds a lease it renews
while the job runs. The reaper re-queues runs whose lease expired (a worker died) and the
reconciler re-enqueues queued runs the broker may have lost. Grading a run twice cannot happen:
only the claim's winner runs it, and only the lease holder may save the result.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from grader.models import (
    Assignment,
    Baseline,
    BaselineRun,
    CodeKind,
    FailureReason,
    GradedRun,
    RunStatus,
    Submission,
    log_cap,
)
from grader.pipeline import MAX_CODE_BYTES, CodeInvalid, Evaluation, evaluate, script_for

log = logging.getLogger(__name__)

Run = TypeVar("Run", bound=GradedRun)


def lease_duration() -> timedelta:
    return timedelta(seconds=getattr(settings, "GRADER_LEASE_SECONDS", 120))


def max_infrastructure_retries() -> int:
    return int(getattr(settings, "GRADER_MAX_INFRASTRUCTURE_RETRIES", 3))


class SubmissionRefused(Exception):
    """The submission breaks a rule (file type, size, daily limit, due date); say why."""


def code_kind_for(filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    if suffix == ".py":
        return CodeKind.PY
    if suffix == ".ipynb":
        return CodeKind.IPYNB
    raise SubmissionRefused("Upload a Python file (.py) or a Jupyter notebook (.ipynb).")


def submissions_left_today(*, user: User, assignment: Assignment, now: datetime) -> int | None:
    """``None`` when the assignment has no daily limit. Infrastructure failures never count."""
    if not assignment.submissions_per_day:
        return None
    used = Submission.objects.filter(
        user=user,
        assignment=assignment,
        counts_against_limit=True,
        created_at__gte=now - timedelta(days=1),
    ).count()
    return max(assignment.submissions_per_day - used, 0)


def queue_for(assignment: Assignment) -> str:
    return "gpu" if assignment.needs_gpu else "cpu"


def _enqueue(run: GradedRun) -> None:
    from grader import tasks

    if isinstance(run, Submission):
        tasks.grade_submission_task.apply_async(args=[run.pk], queue=queue_for(run.assignment))
    else:
        assert isinstance(run, BaselineRun)
        tasks.grade_baseline_run_task.apply_async(
            args=[run.pk], queue=queue_for(run.baseline.assignment)
        )


@transaction.atomic
def submission_create(
    *,
    user: User,
    assignment: Assignment,
    filename: str,
    content: bytes,
    now: datetime | None = None,
) -> Submission:
    """Store the code and a queued row in one transaction; enqueue the grading after commit."""
    now = now or timezone.now()
    kind = code_kind_for(filename)
    if len(content) > MAX_CODE_BYTES:
        raise SubmissionRefused(f"The file is larger than {MAX_CODE_BYTES // 1024} KB.")
    try:
        code = content.decode("utf-8")
    except UnicodeDecodeError:
        raise SubmissionRefused("The file is not UTF-8 text.") from None
    if "\x00" in code:
        raise SubmissionRefused("The file contains NUL bytes; is it really source code?")
    try:
        script_for(code=code, kind=kind)
    except CodeInvalid as error:
        raise SubmissionRefused(str(error)) from None
    if assignment.due_at is not None and now > assignment.due_at:
        raise SubmissionRefused("The due date has passed; this assignment no longer accepts work.")
    # Serialise one student's submissions so two tabs cannot both take the last daily slot.
    User.objects.select_for_update().filter(pk=user.pk).first()
    left = submissions_left_today(user=user, assignment=assignment, now=now)
    if left == 0:
        raise SubmissionRefused(
            f"You have used your {assignment.submissions_per_day} submissions for the last 24 "
            "hours; failed runs caused by the platform do not count."
        )
    submission = Submission.objects.create(
        user=user,
        assignment=assignment,
        dataset=assignment.dataset,
        code=code,
        filename=PurePath(filename).name[:255],
        code_kind=kind,
        status=RunStatus.QUEUED,
        queued_at=now,
    )
    transaction.on_commit(lambda: _enqueue(submission))
    return submission


def _baseline_run_new(baseline: Baseline) -> BaselineRun:
    return BaselineRun.objects.create(
        baseline=baseline,
        dataset=baseline.assignment.dataset,
        code=baseline.code,
        filename=baseline.filename,
        code_kind=code_kind_for(baseline.filename),
        code_sha256=hashlib.sha256(baseline.code.encode()).hexdigest(),
        status=RunStatus.QUEUED,
    )


@transaction.atomic
def baseline_run_create(*, baseline: Baseline) -> BaselineRun:
    """Queue a run of the baseline's current code through the same pipeline as a student's."""
    run = _baseline_run_new(baseline)
    transaction.on_commit(lambda: _enqueue(run))
    return run


class LeaseKeeper(threading.Thread):
    """Renews a run's lease while its job runs, so the reaper leaves it alone."""

    def __init__(self, model: type[GradedRun], pk: int, worker_id: str) -> None:
        super().__init__(name=f"lease-{model.__name__}-{pk}", daemon=True)
        self.model, self.pk, self.worker_id = model, pk, worker_id
        self.stopping = threading.Event()
        self.lost = False

    def run(self) -> None:
        interval = lease_duration().total_seconds() / 3
        try:
            while not self.stopping.wait(interval):
                renewed = self.model._default_manager.filter(
                    pk=self.pk, status=RunStatus.RUNNING, worker_id=self.worker_id
                ).update(lease_expires_at=timezone.now() + lease_duration())
                if not renewed:
                    self.lost = True
                    log.warning("lost the lease on %s %s", self.model.__name__, self.pk)
                    return
        except Exception:
            log.exception("lease renewal failed")
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


def _claim(model: type[Run], pk: int, worker_id: str) -> Run | None:
    now = timezone.now()
    claimed = model._default_manager.filter(pk=pk, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING,
        worker_id=worker_id[:255],
        started_at=now,
        lease_expires_at=now + lease_duration(),
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    return model._default_manager.get(pk=pk)


def _requeue_or_fail(
    model: type[GradedRun], run: GradedRun, *, held_by: dict[str, Any], message: str
) -> bool:
    """Put a run back in the queue after a platform failure, or fail it after too many.

    ``held_by`` narrows the update to the state the caller saw, so a race changes nothing.
    """
    extra: dict[str, Any] = {"counts_against_limit": False} if model is Submission else {}
    if run.infrastructure_retries + 1 > max_infrastructure_retries():
        updated = model._default_manager.filter(pk=run.pk, **held_by).update(
            status=RunStatus.FAILED,
            failure_reason=FailureReason.INFRASTRUCTURE,
            message=message + " It was retried several times; please try again later.",
            finished_at=timezone.now(),
            lease_expires_at=None,
            infrastructure_retries=F("infrastructure_retries") + 1,
            **extra,
        )
        return bool(updated)
    updated = model._default_manager.filter(pk=run.pk, **held_by).update(
        status=RunStatus.QUEUED,
        worker_id="",
        started_at=None,
        lease_expires_at=None,
        queued_at=timezone.now(),
        message=message,
        infrastructure_retries=F("infrastructure_retries") + 1,
        **extra,
    )
    if updated:
        fresh = model._default_manager.get(pk=run.pk)
        transaction.on_commit(lambda: _enqueue(fresh))
    return bool(updated)


def _save_evaluation(
    model: type[GradedRun], run: GradedRun, worker_id: str, ev: Evaluation
) -> bool:
    held_by = {"status": RunStatus.RUNNING, "worker_id": worker_id}
    if ev.failure_reason == FailureReason.INFRASTRUCTURE:
        with transaction.atomic():
            return _requeue_or_fail(model, run, held_by=held_by, message=ev.message)
    updated = model._default_manager.filter(pk=run.pk, **held_by).update(
        status=ev.status,
        failure_reason=ev.failure_reason,
        message=ev.message[:5000],
        public_score=ev.public_score,
        private_score=ev.private_score,
        per_class=ev.per_class,
        confusion_matrix=ev.confusion,
        log=log_cap(ev.log),
        metrics=ev.metrics[:10_000],
        device=ev.device[:120],
        finished_at=timezone.now(),
        lease_expires_at=None,
    )
    return bool(updated)


def _grade(model: type[Run], pk: int, *, worker_id: str, gpu_index: int | None) -> Run | None:
    run = _claim(model, pk, worker_id)
    if run is None:
        return None  # someone else has it, or it is already finished: nothing to do
    assignment = (
        run.assignment if isinstance(run, Submission) else run.baseline.assignment  # type: ignore[attr-defined]
    )
    keeper = LeaseKeeper(model, pk, worker_id)
    keeper.start()
    try:
        evaluation = evaluate(
            assignment=assignment,
            dataset=run.dataset,
            code=run.code,
            kind=run.code_kind,
            job_id=f"{model.__name__.lower()}-{pk}-{run.attempts}",
            gpu_index=gpu_index,
        )
    except Exception as error:
        log.exception("grading %s %s failed on the platform side", model.__name__, pk)
        evaluation = Evaluation(
            status=RunStatus.FAILED,
            failure_reason=FailureReason.INFRASTRUCTURE,
            message=f"The grader failed ({type(error).__name__}); the run will be retried.",
        )
    finally:
        keeper.stop()
    if not _save_evaluation(model, run, worker_id, evaluation):
        log.warning("%s %s changed hands while it ran; result discarded", model.__name__, pk)
    run.refresh_from_db()
    return run


def submission_grade(
    *, submission_id: int, worker_id: str, gpu_index: int | None = None
) -> Submission | None:
    """Claim, run and score one submission. Safe to call twice: the second call does nothing."""
    return _grade(Submission, submission_id, worker_id=worker_id, gpu_index=gpu_index)


def baseline_run_grade(
    *, baseline_run_id: int, worker_id: str, gpu_index: int | None = None
) -> BaselineRun | None:
    return _grade(BaselineRun, baseline_run_id, worker_id=worker_id, gpu_index=gpu_index)


def graded_runs_reap(*, now: datetime | None = None) -> int:
    """Re-queue (or fail, after too many tries) runs whose worker stopped renewing its lease."""
    now = now or timezone.now()
    count = 0
    for model in (Submission, BaselineRun):
        expired = model._default_manager.filter(status=RunStatus.RUNNING, lease_expires_at__lt=now)
        for run in expired:
            with transaction.atomic():
                held_by = {"status": RunStatus.RUNNING, "lease_expires_at": run.lease_expires_at}
                if _requeue_or_fail(
                    model,
                    run,
                    held_by=held_by,
                    message="The worker running this stopped answering; it was queued again.",
                ):
                    count += 1
    return count


def graded_runs_reconcile(
    *, now: datetime | None = None, older_than: timedelta | None = None
) -> int:
    """Re-enqueue queued runs nobody has taken for a while: the broker may have lost them.

    A duplicate message is harmless: the claim lets only one worker run it.
    """
    now = now or timezone.now()
    cutoff = now - (older_than or timedelta(seconds=60))
    count = 0
    for model in (Submission, BaselineRun):
        stale = list(model._default_manager.filter(status=RunStatus.QUEUED, queued_at__lt=cutoff))
        for run in stale:
            # Bump queued_at so the next pass waits again before sending another reminder.
            if model._default_manager.filter(pk=run.pk, status=RunStatus.QUEUED).update(
                queued_at=now
            ):
                transaction.on_commit(lambda run=run: _enqueue(run))
                count += 1
    return count


def baseline_scores(*, assignment: Assignment) -> list[tuple[str, float]]:
    """The latest scored public score of each baseline's current code, by baseline name."""
    runs = (
        BaselineRun.objects.current()
        .filter(baseline__assignment=assignment, status=RunStatus.SCORED)
        .select_related("baseline")
        .order_by("baseline__name", "-finished_at")
    )
    scores: dict[str, float] = {}
    for run in runs:
        if run.public_score is not None:
            scores.setdefault(run.baseline.name, run.public_score)
    return list(scores.items())


def baselines_run_missing(
    *, assignment: Assignment | None = None, now: bool = False
) -> list[BaselineRun]:
    """Queue a run for every baseline whose current code has none on the current dataset.

    With ``now``, grade them here and now (``make run`` and tests), not through the broker.
    """
    baselines = Baseline.objects.needing_run().select_related("assignment")
    if assignment is not None:
        baselines = baselines.filter(assignment=assignment)
    runs = []
    for baseline in baselines:
        if now:
            run = _baseline_run_new(baseline)
            graded = baseline_run_grade(baseline_run_id=run.pk, worker_id="inline")
            runs.append(graded or run)
        else:
            runs.append(baseline_run_create(baseline=baseline))
    return runs
