"""The thread and category pages' plain-SQL reads (forum.reads) say what the ORM said."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import reverse

from courses.access import course_access_for_user
from forum import access, reads, selectors, services
from forum.models import Post, PostLike, Thread
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


@pytest.mark.parametrize("reader_name", ["other_student", "ta"])
def test_the_thread_listing_is_the_orms_for_students_and_staff(
    client_for, cast, place, reader_name
):
    reader = getattr(cast, reader_name)
    anchors = [{}, {"question": place.question}, {"assignment": place.assignment}]
    threads = [
        start_thread(cast.student, place.category, title=f"Thread {index}", **anchors[index % 3])
        for index in range(70)
    ]
    ta_access = access.thread_get_for_user(user=cast.ta, thread_id=threads[0].pk)
    for thread in threads[::7]:
        services.thread_moderate(
            staff=access.thread_get_for_user(user=cast.ta, thread_id=thread.pk),
            action=services.ThreadAction.HIDE,
        )
    services.thread_moderate(staff=ta_access, action=services.ThreadAction.UNHIDE)
    services.thread_moderate(
        staff=access.thread_get_for_user(user=cast.ta, thread_id=threads[5].pk),
        action=services.ThreadAction.PIN,
    )
    reply_to(cast.other_student, threads[3])
    client_for(reader).get(reverse("forum:thread_detail", args=[threads[3].pk]))
    category = type(place.category).objects.get(pk=place.category.pk)
    category.course = cast.course
    is_staff = reader_name == "ta"
    orm = Thread.objects.filter(category=category).order_by("-is_pinned", "-last_posted_at", "-id")
    if not is_staff:
        orm = orm.filter(is_hidden=False)

    for anchor, filters in [
        ({}, {}),
        ({"question_id": place.question.pk}, {"question": place.question}),
        ({"assignment_id": place.assignment.pk}, {"assignment": place.assignment}),
    ]:
        expected = list(orm.filter(**filters).values_list("pk", flat=True))
        shown = []
        for page_number in (1, 2, 3, "9", "x"):
            listing = selectors.threads_for_category(
                category=category,
                user=reader,
                is_staff=is_staff,
                since=cast.student.date_joined,
                page_number=page_number,
                **anchor,
            )
            assert listing.page.paginator.count == len(expected)
            shown.append([row.thread.pk for row in listing.rows])
        # As Paginator.get_page: past the end is the last page, nonsense the first.
        pages = [expected[i : i + 30] for i in range(0, len(expected), 30)] or [[]]
        assert shown == [*(pages[min(n, len(pages)) - 1] for n in (1, 2, 3)), pages[-1], pages[0]]

    listing = selectors.threads_for_category(
        category=category,
        user=reader,
        is_staff=is_staff,
        since=cast.student.date_joined,
        page_number=1,
    )
    by_pk = {row.thread.pk: row for row in listing.rows}
    assert listing.rows[0].thread.pk == threads[5].pk  # pinned first
    assert by_pk[threads[3].pk].new_posts == 0 and not by_pk[threads[3].pk].is_new
    assert all(row.is_new for pk, row in by_pk.items() if pk != threads[3].pk)
    assert by_pk[threads[3].pk].thread.last_poster == cast.other_student.public_name


def test_the_times_shown_read_as_naturaltime_does():
    import random
    from datetime import timedelta

    from django.contrib.humanize.templatetags.humanize import naturaltime
    from django.utils import timezone

    from topdown.fragments import natural_time

    rng = random.Random(7)
    # Seconds, minutes and hours; then days to years, a safe distance from the whole hours at
    # which the text changes (the call below is a moment later than natural_time's).
    deltas = [timedelta(0), timedelta(seconds=5), timedelta(minutes=3), timedelta(hours=5)]
    deltas += [
        timedelta(hours=rng.randrange(24, 24 * 800), minutes=rng.randrange(5, 55))
        for _ in range(300)
    ]
    now = timezone.now()
    for delta in deltas:
        for value in (now - delta, now + delta + timedelta(seconds=30)):
            assert natural_time(value) == naturaltime(value), (delta, value)
            assert natural_time(value) == naturaltime(value)  # from memory, the same
    naive = timezone.make_naive(now - timedelta(days=3, minutes=20))
    assert natural_time(naive) == naturaltime(naive)


def test_the_listing_names_people_and_anchors_as_the_page_always_did(client_for, cast, place):
    from accounts.models import User

    cast.other_student.display_name = "Ada L."
    cast.other_student.save(update_fields=["display_name"])
    gone = User.objects.create_user(username="leaver", password="x")
    EnrolmentFactory(user=gone, course=cast.course)
    about_question = start_thread(cast.other_student, place.category, question=place.question)
    about_assignment = start_thread(gone, place.category, assignment=place.assignment)
    reply_to(cast.student, about_assignment)
    gone.delete()

    content = (
        client_for(cast.ta)
        .get(reverse("forum:category_chapter", args=[cast.course.slug, place.chapter.slug]))
        .content.decode()
    )

    assert "by Ada L.</span>" in content and "about question loss" in content
    assert "by a former member</span>" in content and "about Digits" in content
    assert f"last by {cast.student.public_name} <time" in content
    assert Thread.objects.filter(pk=about_question.pk, author__isnull=False).exists()


def test_the_category_page_answers_as_before_for_every_kind_of_visitor(
    client_for, cast, place, admin_user
):
    url = reverse("forum:category_chapter", args=[cast.course.slug, place.chapter.slug])
    general = reverse("forum:category_general", args=[cast.course.slug])
    new_chapter = ChapterFactory(course=cast.course)

    assert client_for(cast.outsider).get(url).status_code == 403
    assert client_for(cast.outsider).get(general).status_code == 403
    client = client_for(cast.student)
    assert (
        client.get(f"/courses/no-such-course/forum/chapters/{place.chapter.slug}/").status_code
        == 404
    )
    assert client.get(url.replace(place.chapter.slug, "no-such-chapter")).status_code == 404
    made = client.get(reverse("forum:category_chapter", args=[cast.course.slug, new_chapter.slug]))
    assert made.status_code == 200 and new_chapter.title in made.content.decode()
    assert client.get(general).status_code == 200
    thread = start_thread(cast.student, place.category)
    as_admin = client_for(admin_user)  # a superuser, enrolled nowhere: an instructor here
    assert (
        'value="pin"'
        in as_admin.get(reverse("forum:thread_detail", args=[thread.pk])).content.decode()
    )
    assert as_admin.get(url).status_code == 200
