"""Services for graded runs: submissions and baseline runs, from queued to scored or failed.

The database is the source of truth; the broker only carries "please look at run N". A worker
claims a run with a conditional update (``queued`` → ``running``) and holds a lease it renews
while the job runs. The reaper re-queues runs whose lease expired (a worker died) and the
reconciler re-enqueues queued runs the broker may have lost. Grading a run twice cannot happen:
only the claim's winner runs it, and only the lease holder may save the result.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from accounts.models import User
from grader import fairness
from grader.leaderboards import leaderboard_invalidate
from grader.live import RunKeeper, queue_for
from grader.models import (
    Assignment,
    Baseline,
    BaselineRun,
    CodeKind,
    FailureReason,
    GradedRun,
    Regrade,
    RunStatus,
    Submission,
    log_cap,
)
from grader.pipeline import MAX_CODE_BYTES, CodeInvalid, Evaluation, evaluate, script_for
from topdown import sql
from topdown.logs import grading_log_context

log = logging.getLogger(__name__)

Run = TypeVar("Run", bound=GradedRun)


def lease_duration() -> timedelta:
    return timedelta(seconds=getattr(settings, "GRADER_LEASE_SECONDS", 30))


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


def submission_cancel(*, submission: Submission, user: User) -> Submission:
    """Stop a queued or running submission (its student or the course's staff; see access).

    A queued one never ran: the day's submission is given back. A running one is marked
    cancelled at once; its worker notices within a second or two and kills the job, keeping
    what it printed. It still counts: it used the machine.
    """
    now = timezone.now()
    who = "you" if user.pk == submission.user_id else user.public_name
    if submission.status == RunStatus.QUEUED:
        updated = Submission.objects.filter(pk=submission.pk, status=RunStatus.QUEUED).update(
            status=RunStatus.CANCELLED,
            finished_at=now,
            counts_against_limit=False,
            message=f"Cancelled by {who} before it ran.",
        )
    elif submission.status == RunStatus.RUNNING:
        updated = Submission.objects.filter(pk=submission.pk, status=RunStatus.RUNNING).update(
            status=RunStatus.CANCELLED,
            finished_at=now,
            lease_expires_at=None,
            message=f"Cancelled by {who} while it ran.",
        )
    else:
        updated = 0
    submission.refresh_from_db()
    if not updated:
        raise SubmissionRefused(
            f"It could not be cancelled: it is already {submission.get_status_display().lower()}."
        )
    return submission


def _enqueue(run: GradedRun, *, countdown: float = 0) -> None:
    from grader import tasks

    options: dict[str, Any] = {"countdown": countdown} if countdown else {}
    if isinstance(run, Submission):
        tasks.grade_submission_task.apply_async(
            args=[run.pk],
            queue=queue_for(run.assignment),
            priority=fairness.submission_priority(submission=run),
            **options,
        )
    else:
        assert isinstance(run, BaselineRun)
        tasks.grade_baseline_run_task.apply_async(
            args=[run.pk], queue=queue_for(run.baseline.assignment), **options
        )


def retry_delay_s(retries: int) -> float:
    """Seconds before the ``retries``-th try after a platform failure: 5, 10, 20... up to 60.

    A platform failure that is not over in an instant (a broken worker, a full disk) must not
    burn every retry in the same second.
    """
    return float(min(60, 5 * 2 ** max(retries - 1, 0)))


def code_file_check(*, filename: str, size: int) -> str:
    """The code kind of a file of ``size`` bytes, or ``SubmissionRefused`` (type, size).

    What can be said before reading the file.
    """
    kind = code_kind_for(filename)
    if size > MAX_CODE_BYTES:
        raise SubmissionRefused(
            f"The file is larger than {MAX_CODE_BYTES // 1024} KB "
            f"({size // 1024} KB); a notebook shrinks once its outputs are cleared."
        )
    return kind


def submission_code_validate(*, filename: str, content: bytes) -> tuple[str, str]:
    """The code kind and text of a file a student submits, or ``SubmissionRefused`` saying why
    it cannot run: wrong type, too big, not UTF-8, empty, or a notebook that does not convert.

    Forms call it to show the problem next to the field; ``submission_create`` calls it again.
    """
    kind = code_file_check(filename=filename, size=len(content))
    try:
        code = content.decode("utf-8")
    except UnicodeDecodeError:
        raise SubmissionRefused(
            "The file is not UTF-8 text; save it as UTF-8 (any editor can) and upload it again."
        ) from None
    if "\x00" in code:
        raise SubmissionRefused("The file contains NUL bytes; is it really source code?")
    if not code.strip():
        raise SubmissionRefused("The file is empty: there is no code to run.")
    try:
        script, _notes = script_for(code=code, kind=kind)
    except CodeInvalid as error:
        message = str(error)
        raise SubmissionRefused(message[:1].upper() + message[1:]) from None
    if not any(line.strip() and not line.startswith("# %% cell") for line in script.splitlines()):
        raise SubmissionRefused("The notebook's code cells are empty: there is no code to run.")
    return kind, code


@transaction.atomic
def submission_create(
    *,
    user: User,
    assignment: Assignment,
    filename: str,
    content: bytes,
    now: datetime | None = None,
    token: uuid.UUID | None = None,
) -> Submission:
    """Store the code and a queued row in one transaction; enqueue the grading after commit.

    ``token`` is the submit form's: the same form sent again (a double click, a retry after an
    error page whose submission was in fact saved) returns the submission it made, once.
    """
    now = now or timezone.now()
    kind, code = submission_code_validate(filename=filename, content=content)
    if not assignment.published or assignment.dataset is None:
        raise SubmissionRefused("This assignment is a draft; it does not accept work yet.")
    if assignment.due_at is not None and now > assignment.due_at:
        raise SubmissionRefused("The due date has passed; this assignment no longer accepts work.")
    # Serialise one student's submissions so two tabs cannot both take the last daily slot.
    User.objects.select_for_update().filter(pk=user.pk).first()
    if token is not None:
        sent_before = Submission.objects.filter(user=user, client_token=token).first()
        if sent_before is not None and sent_before.assignment_id == assignment.pk:
            return sent_before
        if sent_before is not None:
            token = None  # a token reused on another assignment: not the same form
    left = submissions_left_today(user=user, assignment=assignment, now=now)
    if left == 0:
        raise SubmissionRefused(
            f"You have used your {assignment.submissions_per_day} submissions for the last 24 "
            "hours; failed runs caused by the platform do not count."
        )
    gpu_left = fairness.gpu_seconds_left(user=user, assignment=assignment, now=now)
    if gpu_left is not None and gpu_left < 1:
        raise SubmissionRefused(
            f"You have used your {assignment.gpu_seconds_per_day} GPU-seconds on this assignment "
            "for the last 24 hours; runs that end or fall out of the window give time back."
        )
    submission = Submission.objects.create(
        user=user,
        assignment=assignment,
        dataset=assignment.live_dataset,
        code=code,
        filename=PurePath(filename).name[:255],
        code_kind=kind,
        status=RunStatus.QUEUED,
        queued_at=now,
        client_token=token,
    )
    transaction.on_commit(lambda: _enqueue(submission))
    return submission


def _baseline_run_new(baseline: Baseline) -> BaselineRun:
    return BaselineRun.objects.create(
        baseline=baseline,
        dataset=baseline.assignment.live_dataset,
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
        log="",
        metrics=[],
        infrastructure_retries=F("infrastructure_retries") + 1,
        **extra,
    )
    if updated:
        fresh = model._default_manager.get(pk=run.pk)
        delay = retry_delay_s(fresh.infrastructure_retries)
        transaction.on_commit(lambda: _enqueue(fresh, countdown=delay))
    return bool(updated)


def _save_evaluation(
    model: type[GradedRun], run: GradedRun, worker_id: str, ev: Evaluation
) -> bool:
    held_by = {"status": RunStatus.RUNNING, "worker_id": worker_id}
    if ev.status == RunStatus.CANCELLED:
        # Cancelled while it ran: the row already says so; keep what the job printed.
        cancelled = {"status": RunStatus.CANCELLED, "worker_id": worker_id}
        updated = model._default_manager.filter(pk=run.pk, **cancelled).update(
            log=log_cap(ev.log), metrics=ev.metrics[:10_000], device=ev.device[:120]
        )
        return bool(updated)
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
    field = "submission_id" if model is Submission else "baseline_run_id"
    with grading_log_context(**{field: pk}):
        return _grade_run(model, pk, worker_id=worker_id, gpu_index=gpu_index)


def _grade_run(model: type[Run], pk: int, *, worker_id: str, gpu_index: int | None) -> Run | None:
    run = _claim(model, pk, worker_id)
    if run is None:
        return None  # someone else has it, or it is already finished: nothing to do
    assignment = (
        run.assignment if isinstance(run, Submission) else run.baseline.assignment  # type: ignore[attr-defined]
    )
    wall_seconds = (
        fairness.run_wall_seconds(submission=run, assignment=assignment)
        if isinstance(run, Submission)
        else None
    )
    keeper = RunKeeper(model, pk, worker_id, lease=lease_duration())
    keeper.start()
    try:
        evaluation = evaluate(
            assignment=assignment,
            dataset=run.dataset,
            code=run.code,
            kind=run.code_kind,
            job_id=f"{model.__name__.lower()}-{pk}-{run.attempts}",
            wall_seconds=wall_seconds,
            gpu_index=gpu_index,
            on_log=keeper.on_log,
            on_metric=keeper.on_metric,
            cancel=keeper.cancel,
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
    else:
        leaderboard_invalidate(assignment_id=assignment.pk)
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
                transaction.on_commit(functools.partial(_enqueue, run))
                count += 1
    return count


BASELINE_RUNS_ORDER = "b.name, r.finished_at DESC, r.id DESC"


def _baseline_runs_sql(assignment: str, *, numbered: bool = False) -> str:
    # BaselineRun.objects.current() in plain SQL: the result page reads this on every view.
    # ``assignment``: the assignment's id, a parameter or a column of an enclosing statement.
    number = f", ROW_NUMBER() OVER (ORDER BY {BASELINE_RUNS_ORDER}) AS n" if numbered else ""
    return (
        f"SELECT b.name, r.public_score{number}"  # noqa: S608 - names from the models
        f" FROM {sql.table(BaselineRun)} r"
        f" JOIN {sql.table(Baseline)} b ON b.id = r.baseline_id"
        f" JOIN {sql.table(Assignment)} ba ON ba.id = b.assignment_id"
        f" WHERE b.assignment_id = {assignment} AND r.status = %s AND r.public_score IS NOT NULL"
        " AND r.code = b.code AND r.filename = b.filename AND r.dataset_id = ba.dataset_id"
        f" ORDER BY {BASELINE_RUNS_ORDER}"
    )


@functools.cache
def _baseline_scores_sql() -> str:
    return _baseline_runs_sql("%s")


def baseline_scores(*, assignment: Assignment) -> list[tuple[str, float]]:
    """The latest scored public score of each baseline's current code, by baseline name."""
    with connection.cursor() as cursor:
        cursor.execute(_baseline_scores_sql(), [assignment.pk, RunStatus.SCORED])
        runs = cursor.fetchall()
    return _latest_by_name(runs)


def _latest_by_name(runs: Iterable[Sequence[Any]]) -> list[tuple[str, float]]:
    scores: dict[str, float] = {}
    for name, score in runs:
        scores.setdefault(name, score)
    return list(scores.items())


def baseline_scores_sql(assignment: str) -> str:
    """``baseline_scores`` as one JSON column of an enclosing statement, whose ``assignment``
    column is the assignment's id; it takes one parameter, ``RunStatus.SCORED``. Read it with
    ``baseline_scores_from_db``."""
    pairs = (
        "json_agg(json_build_array(x.name, x.public_score) ORDER BY x.n)"
        if connection.vendor == "postgresql"
        else "json_group_array(json_array(x.name, x.public_score))"  # in the subquery's order
    )
    runs = _baseline_runs_sql(assignment, numbered=True)
    return f"(SELECT {pairs} FROM ({runs}) x)"  # noqa: S608


def baseline_scores_from_db(value: Any) -> list[tuple[str, float]]:
    """What ``baseline_scores_sql`` read, as ``baseline_scores`` gives it."""
    runs = json.loads(value) if isinstance(value, str | bytes) else value
    return _latest_by_name(runs or [])


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


# --- What course staff do: regrade, override, rerun baselines ----------------------------------

# Heavy columns a regrade neither reads nor needs to load (it resets them with one UPDATE).
_REGRADE_DEFERRED = ("code", "log", "metrics", "per_class", "confusion_matrix")


@dataclass(frozen=True)
class RegradeOutcome:
    regrades: list[Regrade]
    skipped_running: int = 0
    skipped_cancelled: int = 0


@transaction.atomic
def submissions_regrade(
    *,
    assignment: Assignment,
    submission_ids: Collection[int] | None = None,
    requested_by: User,
    now: datetime | None = None,
) -> RegradeOutcome:
    """Send submissions back to the queue to be graded again on the assignment's current dataset.

    ``submission_ids=None`` means every submission of the assignment. Each regraded submission
    gets a ``Regrade`` row holding its previous status, scores and failure; the submission itself
    is reset to queued and enqueued after commit, exactly like a new one. Running submissions are
    skipped (their worker holds them; cancel first). Cancelled ones are regraded only when picked
    by id: "all" means the graded work, not what someone withdrew. The daily limit is untouched:
    no submission is created and ``created_at`` is kept. An override stays until staff clear it.
    """
    now = now or timezone.now()
    rows = (
        Submission.objects.select_for_update()
        .filter(assignment=assignment)
        .defer(*_REGRADE_DEFERRED)
        .order_by("pk")
    )
    regradable = {RunStatus.SCORED, RunStatus.FAILED, RunStatus.QUEUED}
    if submission_ids is not None:
        rows = rows.filter(pk__in=list(submission_ids))
        regradable.add(RunStatus.CANCELLED)
    chosen: list[Submission] = []
    running = cancelled = 0
    for submission in rows:
        if submission.status in regradable:
            chosen.append(submission)
        elif submission.status == RunStatus.RUNNING:
            running += 1
        else:
            cancelled += 1
    regrades = Regrade.objects.bulk_create(
        Regrade(
            submission=submission,
            requested_by=requested_by,
            created_at=now,
            previous_status=submission.status,
            previous_failure_reason=submission.failure_reason,
            previous_public_score=submission.public_score,
            previous_private_score=submission.private_score,
            previous_dataset_id=submission.dataset_id,
        )
        for submission in chosen
    )
    # The rows are locked, so this updates every chosen one; the status filter is the guard.
    Submission.objects.filter(pk__in=[s.pk for s in chosen], status__in=regradable).update(
        status=RunStatus.QUEUED,
        dataset=assignment.dataset_id,
        failure_reason="",
        message="Sent back to the queue by course staff to be graded again.",
        queued_at=now,
        started_at=None,
        finished_at=None,
        worker_id="",
        device="",
        lease_expires_at=None,
        infrastructure_retries=0,
        public_score=None,
        private_score=None,
        per_class=[],
        confusion_matrix=[],
        log="",
        metrics=[],
    )
    # The cached leaderboard keeps the old scores until each regraded run is scored again
    # (``_grade`` invalidates it then).
    for submission in chosen:
        submission.assignment = assignment  # _enqueue picks the queue from it
        # robust: one message the broker refuses must not stop the others (the reconciler
        # sends it again a minute later).
        transaction.on_commit(functools.partial(_enqueue, submission), robust=True)
    return RegradeOutcome(regrades=regrades, skipped_running=running, skipped_cancelled=cancelled)


def submission_score_override(
    *, submission: Submission, score: float, comment: str, user: User, now: datetime | None = None
) -> Submission:
    """Replace the submission's score for grading (the grade export), saying why.

    The measured scores stay as they are; leaderboards keep showing them.
    """
    comment = comment.strip()
    if not math.isfinite(score):
        raise ValidationError({"score": "Enter a finite number."})
    if not comment:
        raise ValidationError({"comment": "Say why the score is overridden; the student sees it."})
    submission.score_override = score
    submission.override_comment = comment
    submission.overridden_by = user
    submission.overridden_at = now or timezone.now()
    submission.save(
        update_fields=[
            "score_override",
            "override_comment",
            "overridden_by",
            "overridden_at",
            "updated_at",
        ]
    )
    return submission


def submission_score_override_clear(*, submission: Submission) -> Submission:
    """Go back to the measured score."""
    submission.score_override = None
    submission.override_comment = ""
    submission.overridden_by = None
    submission.overridden_at = None
    submission.save(
        update_fields=[
            "score_override",
            "override_comment",
            "overridden_by",
            "overridden_at",
            "updated_at",
        ]
    )
    return submission


@transaction.atomic
def baselines_rerun(*, assignment: Assignment) -> list[BaselineRun]:
    """Queue a fresh run of each of the assignment's baselines (after the dataset changed, say).

    A baseline whose current code already has a queued or running run on the current dataset is
    left to it: a second run would score the same code on the same data.
    """
    in_progress = BaselineRun.objects.filter(
        baseline=OuterRef("pk"),
        dataset=OuterRef("assignment__dataset"),
        code=OuterRef("code"),
        filename=OuterRef("filename"),
        status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
    )
    # Locked so that a double click cannot queue each baseline twice.
    baselines = (
        Baseline.objects.select_for_update(of=("self",))
        .filter(assignment=assignment)
        .exclude(Exists(in_progress))
        .select_related("assignment")
        .order_by("name")
    )
    return [baseline_run_create(baseline=baseline) for baseline in baselines]
