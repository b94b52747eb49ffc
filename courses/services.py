"""Services that change courses, enrolments and attempts."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from courses import selectors
from courses.code_questions import CodeRunUnavailable, grade_code
from courses.grading import free_text_fraction, grade_answer, points_for
from courses.models import (
    Answer,
    Attempt,
    Course,
    Enrolment,
    Question,
    Questionnaire,
    Role,
    RubricItem,
)
from topdown import sql

log = logging.getLogger(__name__)


class CourseError(Exception):
    """A request the rules refuse; the message is shown to the user as is."""


class AttemptAlreadySubmitted(CourseError):
    def __init__(self, attempt: Attempt) -> None:
        super().__init__("This attempt was already submitted; here is its result.")
        self.attempt = attempt


def enrolment_create(
    *, user: User, course: Course, invite_code: str = "", role: str = Role.STUDENT
) -> Enrolment:
    """Enrol a user. Open courses need nothing; invite-only courses need the right code."""
    needs_code = course.enrolment == Course.Enrolment.INVITE and role == Role.STUDENT
    if needs_code and (not invite_code or invite_code.strip() != course.invite_code):
        raise CourseError("That invite code is not right for this course.")
    enrolment, created = Enrolment.objects.get_or_create(
        user=user, course=course, defaults={"role": role}
    )
    if not created and enrolment.role != role and role != Role.STUDENT:
        enrolment.role = role
        enrolment.save(update_fields=["role", "updated_at"])
    return enrolment


def attempts_remaining(*, questionnaire: Questionnaire, submitted_count: int) -> int | None:
    if not questionnaire.max_attempts:
        return None
    return max(questionnaire.max_attempts - submitted_count, 0)


def questionnaire_is_closed(*, questionnaire: Questionnaire, now: datetime | None = None) -> bool:
    """Past the due date, with late work refused."""
    now = now or timezone.now()
    past_due = questionnaire.due_at is not None and now > questionnaire.due_at
    return past_due and questionnaire.late == Questionnaire.Late.REFUSE


def _check_deadline(questionnaire: Questionnaire, now: datetime) -> bool:
    """Return whether work done now is late; raise if late work is refused."""
    if questionnaire.due_at is None or now <= questionnaire.due_at:
        return False
    if questionnaire.late == Questionnaire.Late.REFUSE:
        raise CourseError(
            f"The due date ({timezone.localtime(questionnaire.due_at):%d %b %Y, %H:%M}) has "
            "passed; this questionnaire no longer accepts answers."
        )
    return True


@transaction.atomic
def attempt_save(
    *,
    user: User,
    questionnaire: Questionnaire,
    token: uuid.UUID | None,
    responses: Mapping[int, object],
    submit: bool,
    now: datetime | None = None,
    questions: list[Question] | None = None,
) -> Attempt:
    """Save the student's answers to their draft attempt and, if ``submit``, grade it.

    ``responses`` maps question ids of this questionnaire to cleaned values; others are ignored.
    ``token`` comes from the form the student saw: a repeated submit of the same form finds the
    attempt already submitted and raises ``AttemptAlreadySubmitted`` instead of using up
    another attempt. ``questions`` are this questionnaire's questions with their choices
    prefetched, when the caller has loaded them already. Course staff (answering while they
    preview the course) are held to neither the attempt limit nor the due date: their attempts
    never count towards anything.
    """
    now = now or timezone.now()
    # One lock per student and course serialises their attempt bookkeeping.
    enrolment = selectors.enrolment_locked(
        user_id=user.pk, course_id=questionnaire.chapter.course_id
    )
    if enrolment is None:
        raise CourseError("Enrol in this course to answer its questionnaires.")

    # The student's attempts at this questionnaire, in one query: the token's, the draft, and
    # the counts come from the same rows.
    attempts = selectors.user_attempts(questionnaire_id=questionnaire.pk, user_id=user.pk)
    if token is not None:
        existing = next((a for a in attempts if a.token == token), None)
        if existing is not None and existing.status == Attempt.Status.SUBMITTED:
            raise AttemptAlreadySubmitted(existing)
    is_staff = enrolment.is_staff_role
    is_late = False if is_staff else _check_deadline(questionnaire, now)
    submitted = sum(1 for a in attempts if a.status == Attempt.Status.SUBMITTED)
    remaining = attempts_remaining(questionnaire=questionnaire, submitted_count=submitted)
    if remaining == 0 and not is_staff:
        raise CourseError("You have used all your attempts at this questionnaire.")

    attempt = next((a for a in attempts if a.status == Attempt.Status.DRAFT), None)
    existing_answers: dict[int, Answer] = {}
    if attempt is None:
        # Not saved yet: a new attempt that is submitted at once is inserted graded, below.
        attempt = Attempt(
            questionnaire=questionnaire,
            user=user,
            number=max((a.number for a in attempts), default=0) + 1,
            token=token or uuid.uuid4(),
        )
    else:
        existing_answers = {a.question_id: a for a in attempt.answers.all()}
    if questions is None:
        questions = list(questionnaire.questions.filter(archived=False).prefetch_related("choices"))
    to_create, to_update = [], []
    code_pending = False
    for question in questions:
        response = responses.get(question.id)
        answer = existing_answers.get(question.id)
        if answer is None:
            answer = Answer(attempt=attempt, question=question, response=response)
            to_create.append(answer)
        else:
            answer.response = response
            answer.updated_at = now
            to_update.append(answer)
        if submit:
            grade = grade_answer(question, response)
            answer.score = points_for(grade.fraction, question.points)
            answer.is_correct = grade.is_correct
            answer.feedback = grade.feedback
            answer.details = {}
            code_pending |= question.kind == Question.Kind.CODE and answer.score is None

    if submit:
        attempt.status = Attempt.Status.SUBMITTED
        attempt.submitted_at = now
        attempt.is_late = is_late
        attempt.max_score = sum((q.points for q in questions), Decimal("0"))
        attempt.score = sum(((a.score or Decimal("0")) for a in to_create + to_update), Decimal(0))
    if attempt._state.adding:
        sql.insert([attempt], return_pk=True)  # the submit's hot path: no query to compile
        for answer in to_create:
            answer.attempt = attempt  # set again: the attempt has its id now
    elif submit:
        attempt.save(
            update_fields=["status", "submitted_at", "is_late", "max_score", "score", "updated_at"]
        )
    else:
        attempt.save(update_fields=["updated_at"])
    sql.insert(to_create)
    Answer.objects.bulk_update(
        to_update, ["response", "score", "is_correct", "feedback", "details", "updated_at"]
    )
    if submit and code_pending:
        attempt_id = attempt.id
        transaction.on_commit(lambda: _enqueue_code_grading(attempt_id))
    return attempt


def _enqueue_code_grading(attempt_id: int) -> None:
    from courses.tasks import grade_code_answers_task  # the task module imports this one

    try:
        grade_code_answers_task.apply_async(args=[attempt_id], queue="cpu")
    except Exception:
        # The attempt is saved; a broker outage must not turn the student's submit into an
        # error page. The reconciler enqueues it again (attempt_code_answers_reconcile).
        log.exception("could not enqueue the code grading of attempt %s", attempt_id)


CODE_UNAVAILABLE_FEEDBACK = (
    "Your code could not be run because of a problem on our side, not yours. Staff can have it "
    "run again; you may also submit a new attempt."
)


def attempt_code_answers_grade(*, attempt_id: int, give_up: bool = False) -> Attempt | None:
    """Run the tests of a submitted attempt's code answers that have no score yet; rescore it.

    Safe to run twice, or twice at once: graded answers are skipped, and a result is saved only
    onto an answer that is still ungraded, so the first run to finish wins. When the sandbox
    cannot run a job (``CodeRunUnavailable``) the answer stays ungraded and the error is raised
    after the other answers are done, for the caller to retry; with ``give_up`` it is marked
    unavailable instead (still unscored, no longer shown as running).
    """
    attempt = Attempt.objects.filter(pk=attempt_id, status=Attempt.Status.SUBMITTED).first()
    if attempt is None:
        return None
    pending = attempt.answers.filter(
        question__kind=Question.Kind.CODE, score__isnull=True
    ).select_related("question")
    unavailable: CodeRunUnavailable | None = None
    for answer in pending:
        question = answer.question
        try:
            grade = grade_code(
                code=str(answer.response or ""),
                visible_tests=question.visible_tests,
                hidden_tests=question.hidden_tests,
                time_limit=question.time_limit_seconds,
                job_id=f"code-answer-{answer.pk}",
            )
        except CodeRunUnavailable as error:
            log.warning("code answer %s could not run: %s", answer.pk, error)
            unavailable = error
            if give_up:
                Answer.objects.filter(pk=answer.pk, score__isnull=True).update(
                    feedback=CODE_UNAVAILABLE_FEEDBACK,
                    details={"unavailable": True, "message": CODE_UNAVAILABLE_FEEDBACK},
                    updated_at=timezone.now(),
                )
            continue
        Answer.objects.filter(pk=answer.pk, score__isnull=True).update(
            score=points_for(grade.fraction, question.points),
            is_correct=grade.is_correct,
            feedback=grade.feedback,
            details=grade.details(),
            updated_at=timezone.now(),
        )
    with transaction.atomic():
        # Locked, so a concurrent rescore (a self-assessment) cannot save an older total.
        attempt = Attempt.objects.select_for_update().get(pk=attempt_id)
        attempt_rescore(attempt=attempt)
    if unavailable is not None and not give_up:
        raise unavailable
    return attempt


def attempts_with_code_pending(*, older_than: timedelta, now: datetime | None = None) -> list[int]:
    """Submitted attempts whose code answers still wait for their tests after ``older_than``."""
    cutoff = (now or timezone.now()) - older_than
    return list(
        Answer.objects.filter(
            attempt__status=Attempt.Status.SUBMITTED,
            attempt__submitted_at__lt=cutoff,
            question__kind=Question.Kind.CODE,
            score__isnull=True,
            details__unavailable__isnull=True,
        )
        .values_list("attempt_id", flat=True)
        .distinct()
        .order_by("attempt_id")
    )


def attempt_code_answers_reconcile(*, older_than: timedelta = timedelta(minutes=10)) -> int:
    """Enqueue again the code grading the broker may have lost; grading twice is harmless."""
    attempt_ids = attempts_with_code_pending(older_than=older_than)
    for attempt_id in attempt_ids:
        _enqueue_code_grading(attempt_id)
    return len(attempt_ids)


def attempt_rescore(*, attempt: Attempt) -> Attempt:
    """Recompute the attempt's total from its answers (after a self-assessment or review)."""
    total = sum((a.score or Decimal("0") for a in attempt.answers.all()), Decimal("0"))
    attempt.score = total
    attempt.save(update_fields=["score", "updated_at"])
    return attempt


@transaction.atomic
def answer_self_assess(*, user: User, answer: Answer, assessment: str) -> Answer:
    if answer.attempt.user_id != user.pk:
        raise CourseError("You can only assess your own answers.")
    if answer.question.kind != Question.Kind.FREE_TEXT:
        raise CourseError("Only free-text answers are self-assessed.")
    if answer.attempt.status != Attempt.Status.SUBMITTED:
        raise CourseError("Submit the attempt before assessing your answers.")
    if assessment not in Answer.SelfAssessment.values:
        raise CourseError("Choose got it, partly or missed.")
    if answer.review_score is not None:
        raise CourseError("A teaching assistant has already reviewed this answer.")
    if not answer.response:
        raise CourseError("There is nothing to assess: no answer was given.")
    answer.self_assessment = assessment
    answer.score = points_for(free_text_fraction(answer), answer.question.points)
    answer.save(update_fields=["self_assessment", "score", "updated_at"])
    attempt_rescore(attempt=answer.attempt)
    return answer


@transaction.atomic
def answer_review(
    *,
    reviewer: User,
    answer: Answer,
    feedback: str,
    score: Decimal | None = None,
    rubric_item_ids: Collection[int] = (),
    now: datetime | None = None,
) -> Answer:
    """A TA's or instructor's score for a free-text answer; it replaces the self-assessment.

    A question with rubric items is scored by the ticked items (their points summed, capped at
    the question's points) and ``score`` must be left out; one without takes ``score``.
    """
    if answer.question.kind != Question.Kind.FREE_TEXT:
        raise CourseError("Only free-text answers are reviewed.")
    if answer.attempt.status != Attempt.Status.SUBMITTED:
        raise CourseError("This attempt has not been submitted yet.")
    points = answer.question.points
    rubric = list(RubricItem.objects.filter(question_id=answer.question_id))
    ticked = _rubric_items_ticked(rubric=rubric, item_ids=rubric_item_ids)
    if rubric:
        if score is not None:
            raise CourseError("This question is scored by its rubric: tick items instead.")
        score = min(sum((item.points for item in ticked), Decimal("0")), points)
    elif score is None:
        raise CourseError("Enter a score.")
    if score < 0 or score > points:
        raise CourseError(f"The score must be between 0 and {points}.")
    answer.review_score = score
    answer.review_feedback = feedback.strip()
    answer.review_rubric = [
        {"id": item.id, "text": item.text, "points": str(item.points)} for item in ticked
    ]
    answer.reviewed_by = reviewer
    answer.reviewed_at = now or timezone.now()
    answer.score = points_for(free_text_fraction(answer), points)
    answer.save(
        update_fields=[
            "review_score",
            "review_feedback",
            "review_rubric",
            "reviewed_by",
            "reviewed_at",
            "score",
            "updated_at",
        ]
    )
    attempt_rescore(attempt=answer.attempt)
    return answer


def _rubric_items_ticked(
    *, rubric: list[RubricItem], item_ids: Collection[int]
) -> list[RubricItem]:
    """The rubric's items among ``item_ids``, in rubric order; an id from elsewhere is refused."""
    wanted = set(item_ids)
    unknown = wanted - {item.id for item in rubric}
    if unknown:
        raise CourseError("Some ticked items are not part of this question's rubric.")
    return [item for item in rubric if item.id in wanted]


def enrolment_anonymity_set(*, enrolment: Enrolment, anonymous: bool) -> Enrolment:
    """Whether the student appears on leaderboards under an anonymous label (staff still see
    who it is). Only students are ranked, so only a student's choice means anything."""
    if enrolment.role != Role.STUDENT:
        raise CourseError("Only students appear on leaderboards.")
    if enrolment.leaderboard_anonymous != anonymous:
        enrolment.leaderboard_anonymous = anonymous
        enrolment.save(update_fields=["leaderboard_anonymous", "updated_at"])
    return enrolment
