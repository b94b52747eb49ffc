"""The gradebook: each student's questionnaire and assignment grades, weighted into a course grade,
and per-question statistics of a questionnaire.

Grades are 0-1 fractions. A questionnaire's grade is the counted attempt's score (as
``selectors.class_progress`` computes it); an assignment's is ``assignment_fraction`` of the
student's best counted score (``grader.staff_selectors.assignment_grades``, overrides applied).
Nothing attempted or submitted counts as 0.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q

from courses import selectors
from courses.models import (
    Answer,
    Attempt,
    Chapter,
    Choice,
    Course,
    Enrolment,
    GradeWeight,
    Question,
    Questionnaire,
    Role,
)
from grader.metrics import Direction
from grader.models import Assignment
from grader.results import pass_verdict
from grader.staff_selectors import assignment_grades
from grader.submissions import baseline_scores

DEFAULT_WEIGHT = Decimal("1")


@dataclass(frozen=True)
class GradeColumn:
    """One graded item: a chapter's questionnaire or one of its assignments."""

    kind: str  # GradeWeight.Kind
    object_id: int
    chapter: Chapter
    title: str
    weight: Decimal
    # Why the column cannot be graded 0-1 (it then shows raw scores and is left out of totals).
    ungradable: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}-{self.object_id}"

    @property
    def counts(self) -> bool:
        return not self.ungradable and self.weight > 0


@dataclass
class GradeCell:
    fraction: float | None  # None: not gradable
    raw: float | None = None  # an assignment's best score in its metric's units
    attempted: bool = False

    @property
    def percent(self) -> int | None:
        return None if self.fraction is None else round(self.fraction * 100)


@dataclass
class StudentGrades:
    user_id: int
    name: str
    username: str
    cells: list[GradeCell] = field(default_factory=list)
    total: float | None = None

    @property
    def total_percent(self) -> int | None:
        return None if self.total is None else round(self.total * 100)


@dataclass
class Gradebook:
    columns: list[GradeColumn]
    students: list[StudentGrades]


def assignment_fraction(
    *, assignment: Assignment, score: float | None, baselines: list[tuple[str, float]]
) -> float | None:
    """A best score as a 0-1 grade, or None where there is no sound mapping.

    With a pass rule, pass is 1 and fail 0. Without one, a higher-is-better metric (accuracy,
    top-5 accuracy, macro F1: all 0-1 already) counts as it is; a lower-is-better metric (an
    error, unbounded) has no 0-1 reading, so the instructor must set a pass rule to grade it.
    No submission counts as 0 whenever the assignment is gradable.
    """
    if assignment.pass_rule != Assignment.PassRule.NONE:
        if assignment.pass_rule == Assignment.PassRule.BEAT_BASELINE:
            name = assignment.pass_baseline.name if assignment.pass_baseline else ""
            if name not in dict(baselines):
                return None
        if score is None:
            return 0.0
        verdict = pass_verdict(assignment=assignment, score=score, baselines=baselines)
        return None if verdict is None else float(verdict.passed)
    if assignment.direction == Direction.LOWER_IS_BETTER:
        return None
    return 0.0 if score is None else min(1.0, max(0.0, score))


def _ungradable_reason(assignment: Assignment, baselines: list[tuple[str, float]]) -> str:
    if assignment.pass_rule == Assignment.PassRule.BEAT_BASELINE:
        name = assignment.pass_baseline.name if assignment.pass_baseline else ""
        if name not in dict(baselines):
            return f"The pass baseline {name} has no score yet."
    if (
        assignment.pass_rule == Assignment.PassRule.NONE
        and assignment.direction == Direction.LOWER_IS_BETTER
    ):
        return "Lower-is-better metric without a pass rule: set one to grade it."
    return ""


def grade_weights(*, course: Course) -> dict[tuple[str, int], Decimal]:
    return {
        (kind, object_id): weight
        for kind, object_id, weight in GradeWeight.objects.filter(course=course).values_list(
            "kind", "object_id", "weight"
        )
    }


def course_assignments(*, course: Course) -> list[Assignment]:
    return list(
        Assignment.objects.filter(chapter__course=course, chapter__published=True, published=True)
        .select_related("chapter__course", "pass_baseline")
        .order_by("chapter__position", "chapter_id", "position", "id")
    )


def gradebook_for_course(*, course: Course) -> Gradebook:
    """Every student's grades and weighted total.

    Queries: three for the questionnaires (``class_progress``), two for weights and assignments,
    then two or three per assignment, however many students there are.
    """
    chapters, progress = selectors.class_progress(course=course)
    weights = grade_weights(course=course)
    assignments = course_assignments(course=course)
    by_chapter: dict[int, list[Assignment]] = defaultdict(list)
    for assignment in assignments:
        by_chapter[assignment.chapter_id].append(assignment)

    columns: list[GradeColumn] = []
    # Per column, how to find a student's cell: a chapter index into class_progress's fractions,
    # or an assignment's grades by username.
    sources: list[int | tuple[Assignment, dict[str, float | None], list[tuple[str, float]]]] = []
    for index, chapter in enumerate(chapters):
        questionnaire: Questionnaire | None = getattr(chapter, "questionnaire", None)
        if questionnaire is not None:
            kind = GradeWeight.Kind.QUESTIONNAIRE
            columns.append(
                GradeColumn(
                    kind=kind,
                    object_id=questionnaire.id,
                    chapter=chapter,
                    title=questionnaire.title,
                    weight=weights.get((kind, questionnaire.id), DEFAULT_WEIGHT),
                )
            )
            sources.append(index)
        for assignment in by_chapter.get(chapter.id, []):
            baselines = (
                baseline_scores(assignment=assignment)
                if assignment.pass_rule == Assignment.PassRule.BEAT_BASELINE
                else []
            )
            best = {
                grade.username: grade.best_score
                for grade in assignment_grades(assignment=assignment, with_private=False)
            }
            kind = GradeWeight.Kind.ASSIGNMENT
            columns.append(
                GradeColumn(
                    kind=kind,
                    object_id=assignment.id,
                    chapter=chapter,
                    title=assignment.title,
                    weight=weights.get((kind, assignment.id), DEFAULT_WEIGHT),
                    ungradable=_ungradable_reason(assignment, baselines),
                )
            )
            sources.append((assignment, best, baselines))

    students = []
    for row in progress:
        grades = StudentGrades(user_id=row.user_id, name=row.name, username=row.username)
        for source in sources:
            if isinstance(source, int):
                fraction = row.fractions[source]
                grades.cells.append(
                    GradeCell(fraction=fraction or 0.0, attempted=fraction is not None)
                )
            else:
                assignment, best, baselines = source
                score = best.get(row.username)
                grades.cells.append(
                    GradeCell(
                        fraction=assignment_fraction(
                            assignment=assignment, score=score, baselines=baselines
                        ),
                        raw=score,
                        attempted=score is not None,
                    )
                )
        grades.total = weighted_total(columns=columns, cells=grades.cells)
        students.append(grades)
    return Gradebook(columns=columns, students=students)


def weighted_total(*, columns: list[GradeColumn], cells: list[GradeCell]) -> float | None:
    """The weighted mean of the gradable cells; None when no column counts."""
    total_weight = Decimal(0)
    total = 0.0
    for column, cell in zip(columns, cells, strict=True):
        if column.counts and cell.fraction is not None:
            total_weight += column.weight
            total += float(column.weight) * cell.fraction
    return total / float(total_weight) if total_weight else None


@transaction.atomic
def grade_weights_set(*, course: Course, weights: dict[tuple[str, int], Decimal]) -> None:
    """Store the course's weights. Caller has checked the user is an instructor of ``course``.

    Every weight must be a non-negative number and at least one must be positive; keys must be
    the course's own questionnaires and assignments.
    """
    if any(weight < 0 for weight in weights.values()):
        raise ValidationError("Weights cannot be negative.")
    known: set[tuple[str, int]] = {
        (GradeWeight.Kind.QUESTIONNAIRE, pk)
        for pk in Questionnaire.objects.filter(chapter__course=course).values_list("id", flat=True)
    } | {
        (GradeWeight.Kind.ASSIGNMENT, pk)
        for pk in Assignment.objects.filter(chapter__course=course).values_list("id", flat=True)
    }
    unknown = set(weights) - known
    if unknown:
        raise ValidationError("Some weights are for items outside this course.")
    # Items without a stored weight count 1, so the check is on the weights as they will be.
    after = dict.fromkeys(known, DEFAULT_WEIGHT) | grade_weights(course=course) | weights
    if not any(after[key] > 0 for key in known):
        raise ValidationError("At least one weight must be above zero.")
    for (kind, object_id), weight in weights.items():
        GradeWeight.objects.update_or_create(
            course=course, kind=kind, object_id=object_id, defaults={"weight": weight}
        )


# --- Per-question statistics --------------------------------------------------------------------


@dataclass
class ChoiceShare:
    choice: Choice
    count: int
    percent: int  # of the question's answers that chose it


@dataclass
class QuestionStats:
    question: Question
    answers: int
    marked: int
    correct: int
    students: int
    choices: list[ChoiceShare] = field(default_factory=list)

    @property
    def correct_percent(self) -> int | None:
        return round(100 * self.correct / self.marked) if self.marked else None

    @property
    def attempts_per_student(self) -> float | None:
        return self.answers / self.students if self.students else None


@dataclass
class QuestionnaireStats:
    questions: list[QuestionStats]
    attempts: int
    students: int

    @property
    def attempts_per_student(self) -> float | None:
        return self.attempts / self.students if self.students else None


def questionnaire_statistics(*, questionnaire: Questionnaire) -> QuestionnaireStats:
    """Per question, over submitted attempts: answers, share correct (of those marked), average
    answers per student, and for choice questions how often each option was chosen.

    Five queries, whatever the number of questions, students or attempts.
    """
    questions = selectors.questionnaire_questions(questionnaire=questionnaire)
    # Students only: staff answering while they preview the course do not count.
    student_ids = Enrolment.objects.filter(
        course__chapters=questionnaire.chapter_id, role=Role.STUDENT
    ).values("user_id")
    submitted = Answer.objects.filter(
        attempt__questionnaire=questionnaire,
        attempt__status=Attempt.Status.SUBMITTED,
        attempt__user_id__in=student_ids,
    )
    # question id: (answers, marked, correct, students)
    counts: dict[int, tuple[int, int, int, int]] = {
        question_id: (n, marked, correct, students)
        for question_id, n, marked, correct, students in submitted.values("question_id")
        .annotate(
            n=Count("id"),
            marked=Count("id", filter=Q(score__isnull=False)),
            correct=Count("id", filter=Q(is_correct=True)),
            students=Count("attempt__user_id", distinct=True),
        )
        .values_list("question_id", "n", "marked", "correct", "students")
        .order_by()
    }
    chosen: dict[int, Counter[int]] = defaultdict(Counter)
    choice_kinds = [Question.Kind.SINGLE, Question.Kind.MULTIPLE]
    for question_id, response in submitted.filter(question__kind__in=choice_kinds).values_list(
        "question_id", "response"
    ):
        if isinstance(response, list):
            chosen[question_id].update({r for r in response if isinstance(r, int)})
    overall = Attempt.objects.filter(
        questionnaire=questionnaire, status=Attempt.Status.SUBMITTED, user_id__in=student_ids
    ).aggregate(attempts=Count("id"), students=Count("user_id", distinct=True))

    stats = []
    for question in questions:
        answers, marked, correct, students = counts.get(question.id, (0, 0, 0, 0))
        item = QuestionStats(
            question=question, answers=answers, marked=marked, correct=correct, students=students
        )
        if question.has_choices:
            item.choices = [
                ChoiceShare(
                    choice=choice,
                    count=chosen[question.id][choice.id],
                    percent=round(100 * chosen[question.id][choice.id] / answers) if answers else 0,
                )
                for choice in question.choices.all()
            ]
        stats.append(item)
    return QuestionnaireStats(
        questions=stats, attempts=overall["attempts"], students=overall["students"]
    )
