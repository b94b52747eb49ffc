"""The gradebook, its weights and CSV export, and per-question statistics."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from courses import services
from courses.gradebook import (
    assignment_fraction,
    grade_weights_set,
    gradebook_for_course,
    questionnaire_statistics,
)
from courses.models import GradeWeight, Question, Role
from grader.models import Assignment
from tests.factories import EnrolmentFactory, UserFactory, choice_question
from tests.grader.factories import AssignmentFactory, BaselineFactory, SubmissionFactory


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    # Assignments need datasets, whose files go to a throwaway folder.
    settings.MEDIA_ROOT = tmp_path / "media"


def submit(user, questionnaire, responses):
    return services.attempt_save(
        user=user, questionnaire=questionnaire, token=None, responses=responses, submit=True
    )


@pytest.fixture
def quiz(cast):
    """A single-choice and a multiple-choice question; the student improves on a second try."""
    questionnaire = cast.questionnaire
    single = choice_question(questionnaire, kind=Question.Kind.SINGLE, correct=[False, True])
    multiple = choice_question(
        questionnaire, kind=Question.Kind.MULTIPLE, correct=[True, True, False]
    )
    s0, s1 = single.choices.all()
    m0, m1, m2 = multiple.choices.all()
    submit(cast.student, questionnaire, {single.id: [s0.id], multiple.id: [m0.id]})  # 0.25
    submit(cast.student, questionnaire, {single.id: [s1.id], multiple.id: [m0.id, m1.id]})  # 1
    submit(cast.other_student, questionnaire, {single.id: [s0.id], multiple.id: [m0.id, m2.id]})
    return single, multiple


@pytest.fixture
def assignment(cast):
    """An accuracy assignment: the student's best counted score is an override of 0.9."""
    assignment = AssignmentFactory(chapter=cast.questionnaire.chapter, metric="accuracy")
    SubmissionFactory(user=cast.student, assignment=assignment, scored=True, public_score=0.8)
    SubmissionFactory(
        user=cast.student,
        assignment=assignment,
        scored=True,
        public_score=0.5,
        score_override=0.9,
        override_comment="Scored on the wrong split.",
        overridden_at=timezone.now(),
    )
    return assignment


def row_for(book, user):
    return next(student for student in book.students if student.user_id == user.pk)


def test_gradebook_shows_questionnaire_and_assignment_grades_and_their_mean(cast, quiz, assignment):
    book = gradebook_for_course(course=cast.course)

    assert [(c.kind, c.object_id) for c in book.columns] == [
        ("questionnaire", cast.questionnaire.id),
        ("assignment", assignment.id),
    ]
    student = row_for(book, cast.student)
    assert [cell.fraction for cell in student.cells] == [1.0, pytest.approx(0.9)]
    assert student.total == pytest.approx(0.95)
    other = row_for(book, cast.other_student)
    assert [cell.fraction for cell in other.cells] == [0.0, 0.0]
    assert [cell.attempted for cell in other.cells] == [True, False]
    assert other.total == 0.0
    # Staff are not graded.
    assert {s.username for s in book.students} == {"student", "other"}


def test_weights_change_the_total(cast, quiz, assignment):
    grade_weights_set(
        course=cast.course,
        weights={
            (GradeWeight.Kind.QUESTIONNAIRE, cast.questionnaire.id): Decimal(3),
            (GradeWeight.Kind.ASSIGNMENT, assignment.id): Decimal(1),
        },
    )

    student = row_for(gradebook_for_course(course=cast.course), cast.student)

    assert student.total == pytest.approx((3 * 1.0 + 0.9) / 4)


def test_a_zero_weight_leaves_an_item_out_of_the_total(cast, quiz, assignment):
    grade_weights_set(
        course=cast.course,
        weights={(GradeWeight.Kind.QUESTIONNAIRE, cast.questionnaire.id): Decimal(0)},
    )

    assert row_for(gradebook_for_course(course=cast.course), cast.student).total == (
        pytest.approx(0.9)
    )


def test_assignment_grades_follow_the_pass_rule_or_the_metric(cast):
    chapter = cast.questionnaire.chapter
    error_metric = AssignmentFactory(chapter=chapter, metric="mse")
    threshold = AssignmentFactory(
        chapter=chapter,
        metric="mse",
        pass_rule=Assignment.PassRule.THRESHOLD,
        pass_threshold=0.5,
    )
    accuracy = AssignmentFactory(chapter=chapter, metric="accuracy")

    assert assignment_fraction(assignment=error_metric, score=0.1, baselines=[]) is None
    assert assignment_fraction(assignment=threshold, score=0.3, baselines=[]) == 1.0
    assert assignment_fraction(assignment=threshold, score=0.7, baselines=[]) == 0.0
    assert assignment_fraction(assignment=threshold, score=None, baselines=[]) == 0.0
    assert assignment_fraction(assignment=accuracy, score=0.75, baselines=[]) == 0.75
    assert assignment_fraction(assignment=accuracy, score=None, baselines=[]) == 0.0


def test_beat_baseline_counts_only_once_the_baseline_has_a_score(cast):
    assignment = AssignmentFactory(chapter=cast.questionnaire.chapter, metric="accuracy")
    baseline = BaselineFactory(assignment=assignment, name="linear")
    Assignment.objects.filter(pk=assignment.pk).update(
        pass_rule=Assignment.PassRule.BEAT_BASELINE, pass_baseline=baseline
    )
    assignment.refresh_from_db()

    assert assignment_fraction(assignment=assignment, score=0.95, baselines=[]) is None
    assert assignment_fraction(assignment=assignment, score=0.95, baselines=[("linear", 0.9)]) == 1
    assert assignment_fraction(assignment=assignment, score=0.85, baselines=[("linear", 0.9)]) == 0


def test_an_ungradable_assignment_shows_its_score_but_stays_out_of_the_total(cast, quiz):
    error_metric = AssignmentFactory(chapter=cast.questionnaire.chapter, metric="mse")
    SubmissionFactory(user=cast.student, assignment=error_metric, scored=True, public_score=2.5)

    book = gradebook_for_course(course=cast.course)

    assert book.columns[1].ungradable
    student = row_for(book, cast.student)
    assert student.cells[1].fraction is None and student.cells[1].raw == 2.5
    assert student.total == 1.0


def test_staff_see_the_gradebook(cast, quiz, assignment, client_for):
    for user in (cast.ta, cast.instructor):
        response = client_for(user).get(reverse("gradebook", args=[cast.course.slug]))
        assert response.status_code == 200
        assert b"95%" in response.content  # the student's total
        assert assignment.title.encode() in response.content


def test_students_and_outsiders_cannot_see_the_gradebook(cast, client_for):
    urls = [
        reverse("gradebook", args=[cast.course.slug]),
        reverse("gradebook_csv", args=[cast.course.slug]),
        reverse("questionnaire_stats", args=[cast.course.slug, cast.questionnaire.chapter.slug]),
    ]
    for user in (cast.student, cast.outsider):
        client = client_for(user)
        for url in urls:
            assert client.get(url).status_code == 403


def test_instructor_sets_weights_through_the_form(cast, quiz, assignment, client_for):
    url = reverse("gradebook", args=[cast.course.slug])
    data = {f"questionnaire-{cast.questionnaire.id}": "3", f"assignment-{assignment.id}": "1"}

    response = client_for(cast.instructor).post(url, data)

    assert response.status_code == 302
    weight = GradeWeight.objects.get(kind="questionnaire", object_id=cast.questionnaire.id)
    assert weight.weight == Decimal(3)
    page = client_for(cast.instructor).get(url)
    assert b"98%" in page.content  # (3 * 100% + 90%) / 4, rounded


@pytest.mark.parametrize(
    ("questionnaire_weight", "assignment_weight", "error"),
    [("-1", "1", b"greater than or equal to 0"), ("0", "0", b"At least one weight")],
)
def test_weights_must_be_non_negative_and_not_all_zero(
    cast, assignment, client_for, questionnaire_weight, assignment_weight, error
):
    url = reverse("gradebook", args=[cast.course.slug])
    data = {
        f"questionnaire-{cast.questionnaire.id}": questionnaire_weight,
        f"assignment-{assignment.id}": assignment_weight,
    }

    response = client_for(cast.instructor).post(url, data)

    assert response.status_code == 200
    assert error in response.content
    assert not GradeWeight.objects.exists()


def test_ta_cannot_change_weights(cast, assignment, client_for):
    url = reverse("gradebook", args=[cast.course.slug])
    data = {f"questionnaire-{cast.questionnaire.id}": "5", f"assignment-{assignment.id}": "1"}

    response = client_for(cast.ta).post(url, data)
    page = client_for(cast.ta).get(url)

    assert response.status_code == 403
    assert not GradeWeight.objects.exists()
    assert b"Save weights" not in page.content


def test_the_service_refuses_to_leave_every_weight_at_zero(cast, assignment):
    grade_weights_set(
        course=cast.course,
        weights={(GradeWeight.Kind.QUESTIONNAIRE, cast.questionnaire.id): Decimal(0)},
    )

    with pytest.raises(ValidationError, match="At least one weight"):
        grade_weights_set(
            course=cast.course,
            weights={(GradeWeight.Kind.ASSIGNMENT, assignment.id): Decimal(0)},
        )
    assert GradeWeight.objects.get(kind="questionnaire").weight == 0
    assert not GradeWeight.objects.filter(kind="assignment").exists()


def test_weights_for_another_course_are_refused(cast, assignment):
    stranger = AssignmentFactory()

    with pytest.raises(ValidationError, match="outside this course"):
        grade_weights_set(
            course=cast.course, weights={(GradeWeight.Kind.ASSIGNMENT, stranger.id): Decimal(1)}
        )


def test_csv_has_the_same_figures_and_escapes_formulas(cast, quiz, assignment, client_for):
    cast.other_student.display_name = '=HYPERLINK("http://evil")'
    cast.other_student.save(update_fields=["display_name"])

    response = client_for(cast.ta).get(reverse("gradebook_csv", args=[cast.course.slug]))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    chapter = cast.questionnaire.chapter.title
    assert rows[0] == [
        "username",
        "name",
        f"{chapter}: {cast.questionnaire.title}",
        f"{chapter}: {assignment.title}",
        f"{chapter}: {assignment.title} (best score)",
        "total",
    ]
    assert rows[1] == ["", "weight", "1.0", "1.0", "", ""]
    by_username = {row[0]: row for row in rows[2:]}
    assert by_username["student"][2:] == ["1.0", "0.9", "0.9", "0.95"]
    assert by_username["other"][1] == '\'=HYPERLINK("http://evil")'
    assert by_username["other"][2:] == ["0.0", "0.0", "", "0.0"]


def test_statistics_show_share_correct_options_chosen_and_attempts(cast, quiz, client_for):
    single, multiple = quiz
    url = reverse("questionnaire_stats", args=[cast.course.slug, cast.questionnaire.chapter.slug])

    response = client_for(cast.ta).get(url)

    assert response.status_code == 200
    stats = response.context["stats"]
    assert (stats.attempts, stats.students) == (3, 2)
    by_question = {item.question.id: item for item in stats.questions}
    first = by_question[single.id]
    assert (first.answers, first.correct, first.correct_percent) == (3, 1, 33)
    assert first.attempts_per_student == 1.5
    assert [(s.count, s.percent) for s in first.choices] == [(2, 67), (1, 33)]
    second = by_question[multiple.id]
    assert [(s.count, s.percent) for s in second.choices] == [(3, 100), (1, 33), (1, 33)]
    assert second.correct == 1
    assert b"Choice 0" in response.content and b"67%" in response.content


def test_drafts_do_not_count_in_statistics(cast, quiz):
    single, _ = quiz
    newcomer = UserFactory()
    EnrolmentFactory(user=newcomer, course=cast.course, role=Role.STUDENT)
    services.attempt_save(
        user=newcomer,
        questionnaire=cast.questionnaire,
        token=None,
        responses={single.id: [single.choices.first().id]},
        submit=False,
    )
    stats = questionnaire_statistics(questionnaire=cast.questionnaire)

    assert (stats.attempts, stats.students) == (3, 2)


def add_students(cast, assignment, n):
    single = cast.questionnaire.questions.first()
    for _ in range(n):
        user = UserFactory()
        EnrolmentFactory(user=user, course=cast.course, role=Role.STUDENT)
        submit(user, cast.questionnaire, {single.id: [single.choices.last().id]})
        SubmissionFactory(user=user, assignment=assignment, scored=True, public_score=0.7)


# User, enrolment, class_progress (chapters, students, attempts), weights, assignments, and per
# assignment its students and its best scores.
GRADEBOOK_QUERIES = 9


@pytest.mark.parametrize("extra_students", [0, 5])
def test_gradebook_query_count_does_not_grow_with_students(
    cast, quiz, assignment, client_for, django_assert_num_queries, extra_students
):
    add_students(cast, assignment, extra_students)
    client = client_for(cast.instructor)
    url = reverse("gradebook", args=[cast.course.slug])

    with django_assert_num_queries(GRADEBOOK_QUERIES):
        response = client.get(url)

    assert response.status_code == 200
    assert response.context["student_count"] == 2 + extra_students


@pytest.mark.parametrize("extra_students", [0, 5])
def test_gradebook_csv_query_count_does_not_grow_with_students(
    cast, quiz, assignment, client_for, django_assert_num_queries, extra_students
):
    add_students(cast, assignment, extra_students)
    client = client_for(cast.ta)

    with django_assert_num_queries(GRADEBOOK_QUERIES):
        response = client.get(reverse("gradebook_csv", args=[cast.course.slug]))

    assert len(response.content.decode().splitlines()) == 2 + 2 + extra_students


@pytest.mark.parametrize("extra_students", [0, 5])
def test_statistics_query_count_does_not_grow_with_students(
    cast, quiz, assignment, client_for, django_assert_num_queries, extra_students
):
    add_students(cast, assignment, extra_students)
    client = client_for(cast.ta)
    url = reverse("questionnaire_stats", args=[cast.course.slug, cast.questionnaire.chapter.slug])

    # User, the course with the enrolment and the questionnaire, questions, choices, answer
    # counts, chosen options, attempt totals.
    with django_assert_num_queries(7):
        response = client.get(url)

    assert response.context["stats"].students == 2 + extra_students


def test_staff_course_page_links_to_the_gradebook(cast, client_for):
    url = reverse("course_detail", args=[cast.course.slug])
    gradebook = reverse("gradebook", args=[cast.course.slug]).encode()

    assert gradebook in client_for(cast.ta).get(url).content
    assert gradebook not in client_for(cast.student).get(url).content
