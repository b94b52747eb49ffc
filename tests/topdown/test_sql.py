"""topdown.sql: plain statements built once must read and write what the ORM would."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from courses.models import Answer, Attempt, Chapter, Course, Enrolment
from tests.factories import (
    ChapterFactory,
    CourseFactory,
    EnrolmentFactory,
    QuestionFactory,
    QuestionnaireFactory,
    UserFactory,
)
from topdown import sql

pytestmark = pytest.mark.django_db


def course_and_enrolment() -> sql.Read:
    columns = (sql.Columns(Course, "co"), sql.Columns(Enrolment, "e"))
    return sql.Read(
        f"SELECT {', '.join(c.sql for c in columns)}, 42 FROM {sql.table(Course)} co"
        f" LEFT JOIN {sql.table(Enrolment)} e ON e.course_id = co.id AND e.user_id = %s"
        " WHERE co.slug = %s ORDER BY co.id",
        columns,
    )


def test_read_gives_instances_equal_to_the_orms_and_none_for_an_outer_join_miss():
    course = CourseFactory()
    member, stranger = UserFactory(), UserFactory()
    enrolment = EnrolmentFactory(user=member, course=course, role="ta")
    read = course_and_enrolment()

    found_course, found_enrolment, extra = read.row([member.pk, course.slug])
    orm = Enrolment.objects.get(pk=enrolment.pk)
    assert (found_course, found_enrolment, extra) == (course, enrolment, 42)
    for field in Enrolment._meta.concrete_fields:
        assert getattr(found_enrolment, field.attname) == getattr(orm, field.attname)
    assert found_course.updated_at == Course.objects.get(pk=course.pk).updated_at

    assert read.row([stranger.pk, course.slug])[1] is None
    assert read.row([member.pk, "no-such-course"]) is None
    assert read.rows([None, course.slug]) == [[course, None, 42]]


def test_columns_with_only_leave_the_other_fields_deferred():
    chapter = ChapterFactory(body="Long *markdown*.")
    columns = sql.Columns(Chapter, "ch", only=("title", "id", "course"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns.sql} FROM {sql.table(Chapter)} ch WHERE ch.id = %s", [chapter.pk]
        )
        found = columns.instance(cursor.fetchone())
    assert found.get_deferred_fields() >= {"body", "slug", "position"}
    assert (found.pk, found.title, found.course_id) == (
        chapter.pk,
        chapter.title,
        chapter.course_id,
    )
    assert found.body == "Long *markdown*."  # loaded by the ORM when read
    with pytest.raises(ValueError, match="no field"):
        sql.Columns(Chapter, "ch", only=("title", "nonsense"))


def test_insert_writes_what_the_orm_would_and_sets_the_new_primary_key():
    questionnaire = QuestionnaireFactory()
    user = UserFactory()
    attempt = Attempt(
        questionnaire=questionnaire,
        user=user,
        number=1,
        token=uuid.uuid4(),
        status=Attempt.Status.SUBMITTED,
        score=Decimal("1.50"),
        max_score=Decimal("3"),
        submitted_at=timezone.now(),
    )
    sql.insert([attempt], return_pk=True)

    assert attempt.pk is not None and not attempt._state.adding
    saved = Attempt.objects.get(pk=attempt.pk)
    assert (saved.token, saved.score, saved.max_score, saved.status) == (
        attempt.token,
        Decimal("1.50"),
        Decimal("3.00"),
        "submitted",
    )
    assert saved.created_at is not None and saved.updated_at is not None  # auto_now(_add)


def test_insert_of_many_rows_keeps_json_values_apart_from_null():
    attempt = Attempt.objects.create(
        questionnaire=QuestionnaireFactory(), user=UserFactory(), number=1
    )
    questions = [QuestionFactory(questionnaire=attempt.questionnaire) for _ in range(3)]
    responses = [["a", 2], {"text": "<b>"}, "plain"]
    answers = [
        Answer(attempt=attempt, question=q, response=r, details={"n": i})
        for i, (q, r) in enumerate(zip(questions, responses, strict=True))
    ]
    sql.insert(answers)

    saved = list(Answer.objects.filter(attempt=attempt).order_by("question_id"))
    assert [a.response for a in saved] == responses
    assert [a.details for a in saved] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert all(not a._state.adding for a in answers)
    sql.insert([])  # nothing to do
    with pytest.raises(ValueError, match="one object"):
        sql.insert(answers, return_pk=True)


def test_statements_run_unprepared_are_never_kept_prepared():
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    statement = "SELECT COUNT(*) FROM courses_course WHERE id > %s"
    with sql.unprepared(), connection.cursor() as cursor:
        for n in range(8):
            cursor.execute(statement, [n])
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert not any("courses_course WHERE id > $1" in text for text in prepared), prepared
    assert connection.connection.prepare_threshold == 5
