"""Celery tasks of the courses app: thin, each loads by id and calls one service."""

from __future__ import annotations

from celery import Task, shared_task

from courses.code_questions import CodeRunUnavailable
from courses.services import attempt_code_answers_grade, attempt_code_answers_reconcile

CODE_GRADING_RETRIES = 3


@shared_task(
    bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=CODE_GRADING_RETRIES
)
def grade_code_answers_task(self: Task, attempt_id: int) -> str | None:
    """Run the tests of an attempt's code answers (queue ``cpu``). Safe to run twice."""
    final = self.request.retries >= CODE_GRADING_RETRIES
    try:
        attempt = attempt_code_answers_grade(attempt_id=attempt_id, give_up=final)
    except CodeRunUnavailable as error:  # the sandbox, not the student: try again later
        raise self.retry(exc=error, countdown=30 * 2**self.request.retries) from error
    return None if attempt is None else str(attempt.score)


@shared_task
def code_answers_reconcile_task() -> int:
    return attempt_code_answers_reconcile()
