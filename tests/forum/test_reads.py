"""The thread and category pages' plain-SQL reads (forum.reads) say what the ORM said."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import reverse

from courses.access import course_access_for_user
from forum import access, reads, selectors, services
from forum.models import Post, PostLike
from tests.factories import ChapterFactory, CourseFactory, EnrolmentFactory, QuestionFactory
from tests.forum.conftest import reply_to, start_thread
from tests.forum.test_spoilers import attempt
from tests.grader.factories import SubmissionFactory

pytestmark = pytest.mark.django_db


def _sql_and_orm_agree(user, thread) -> bool:
    found = reads.thread_row(user=user, thread_id=thread.pk)
    assert found is not None
    course_access = course_access_for_user(user=user, course_slug=thread.course.slug)
    by_orm = access.answers_visible_to(
        user=user,
        access=course_access,
        question_id=thread.question_id,
        assignment_id=thread.assignment_id,
    )
    by_sql = course_access.is_staff or found.submitted_anchor
    assert by_sql == by_orm
    return by_sql


def test_the_spoiler_rule_in_sql_is_the_orms_for_a_question(cast, place):
    thread = start_thread(cast.student, place.category, question=place.question)
    reader = cast.other_student
    assert _sql_and_orm_agree(reader, thread) is False

    attempt(reader, cast.questionnaire, place.question, submitted=False)
    assert _sql_and_orm_agree(reader, thread) is False
    other_question = QuestionFactory(questionnaire=cast.questionnaire, key="other")
    attempt(reader, cast.questionnaire, other_question, submitted=True)
    assert _sql_and_orm_agree(reader, thread) is False
    attempt(cast.student, cast.questionnaire, place.question, submitted=True)  # someone else
    assert _sql_and_orm_agree(reader, thread) is False

    attempt(reader, cast.questionnaire, place.question, submitted=True)
    assert _sql_and_orm_agree(reader, thread) is True
    assert _sql_and_orm_agree(cast.ta, thread) is True


def test_the_spoiler_rule_in_sql_is_the_orms_for_an_assignment(cast, place):
    thread = start_thread(cast.student, place.category, assignment=place.assignment)
    reader = cast.other_student
    SubmissionFactory(user=cast.student, assignment=place.assignment)  # someone else's
    assert _sql_and_orm_agree(reader, thread) is False

    SubmissionFactory(user=reader, assignment=place.assignment)
    assert _sql_and_orm_agree(reader, thread) is True


def test_a_thread_about_nothing_hides_no_answers(cast, place):
    thread = start_thread(cast.student, place.category)
    assert _sql_and_orm_agree(cast.other_student, thread) is True


def test_the_thread_read_carries_the_readers_own_state_only(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    reply_to(cast.ta, thread)
    client_for(cast.other_student).get(reverse("forum:thread_detail", args=[thread.pk]))

    for_author = reads.thread_row(user=cast.student, thread_id=thread.pk)
    for_reader = reads.thread_row(user=cast.other_student, thread_id=thread.pk)
    for_outsider = reads.thread_row(user=cast.outsider, thread_id=thread.pk)

    assert for_author and for_reader and for_outsider
    assert (for_author.watching, for_reader.watching, for_outsider.watching) == (True, False, False)
    assert for_reader.last_read_number == 2 and for_outsider.last_read_number is None
    assert for_reader.enrolment.user_id == cast.other_student.pk  # type: ignore[union-attr]
    assert for_outsider.enrolment is None
    assert for_reader.thread.category.course == thread.course
    assert reads.thread_row(user=cast.student, thread_id=thread.pk + 1000) is None


def test_thread_access_still_refuses_outsiders_and_hides_hidden_threads(cast, place):
    thread = start_thread(cast.student, place.category)
    with pytest.raises(PermissionDenied):
        access.thread_get_for_user(user=cast.outsider, thread_id=thread.pk)
    services.thread_moderate(
        staff=access.thread_get_for_user(user=cast.ta, thread_id=thread.pk),
        action=services.ThreadAction.HIDE,
    )
    with pytest.raises(Http404):
        access.thread_get_for_user(user=cast.other_student, thread_id=thread.pk)
    assert access.thread_get_for_user(user=cast.ta, thread_id=thread.pk).thread.is_hidden


def test_the_posts_read_gives_likes_roles_and_authors_as_the_orm(cast, place):
    thread = start_thread(cast.student, place.category)
    by_ta = reply_to(cast.ta, thread)
    by_instructor = reply_to(cast.instructor, thread)
    by_student = reply_to(cast.other_student, thread)
    PostLike.objects.create(post=by_ta, user=cast.student)
    PostLike.objects.create(post=by_student, user=cast.other_student)  # not the reader's like
    thread_access = access.thread_get_for_user(user=cast.student, thread_id=thread.pk)

    found = reads.posts_in_range(thread=thread_access.thread, user=cast.student, first=1, end=21)

    assert [item.post.number for item in found] == [1, 2, 3, 4]
    assert [item.liked for item in found] == [False, True, False, False]
    assert [item.role for item in found] == [None, "ta", "instructor", None]
    assert [item.post.author.public_name for item in found] == [
        person.public_name
        for person in (cast.student, cast.ta, cast.instructor, cast.other_student)
    ]
    orm = Post.objects.get(pk=by_instructor.pk)
    read = found[2].post
    assert (read.body_html, read.created_at, read.is_hidden) == (
        orm.body_html,
        orm.created_at,
        orm.is_hidden,
    )
    assert (
        reads.posts_in_range(thread=thread_access.thread, user=cast.student, first=2, end=3)[
            0
        ].post.pk
        == by_ta.pk
    )


def test_a_staff_role_in_another_course_is_no_badge_here(cast, place):
    thread = start_thread(cast.student, place.category)
    reply_to(cast.other_student, thread)
    EnrolmentFactory(user=cast.other_student, course=CourseFactory(), role="instructor")
    thread_access = access.thread_get_for_user(user=cast.student, thread_id=thread.pk)

    page = selectors.thread_page(thread_access=thread_access, page_number=1)

    assert [row.role for row in page.rows] == [None, None]


def test_the_category_read_finds_this_courses_chapter_only(cast, place):
    other_course = CourseFactory()
    EnrolmentFactory(user=cast.student, course=other_course)
    twin = ChapterFactory(course=other_course, slug=place.chapter.slug)
    services.category_ensure(course=other_course, chapter=twin)

    found = reads.category_row(
        user=cast.student, course_slug=cast.course.slug, chapter_slug=place.chapter.slug
    )

    assert found is not None and found.category == place.category
    assert found.category.chapter == place.chapter
    assert found.enrolment is not None and found.enrolment.course == cast.course
    assert (
        reads.category_row(user=cast.student, course_slug="no-such-course", chapter_slug=None)
        is None
    )
    missing = reads.category_row(
        user=cast.student, course_slug=cast.course.slug, chapter_slug="no-such-chapter"
    )
    assert missing is not None and missing.category is None
