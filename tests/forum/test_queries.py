"""Forum pages make a fixed number of queries, however many threads or posts they show."""

from __future__ import annotations

import pytest
from django.urls import reverse

from forum.models import PostLike, Thread
from tests.factories import EnrolmentFactory, UserFactory
from tests.forum.conftest import bulk_replies, reply_to, start_thread

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_category(cast, place):
    """40 threads by several people, some read, some about a question or the assignment."""
    authors = [cast.student, cast.other_student, cast.ta]
    for index in range(40):
        anchor = {}
        if index % 3 == 1:
            anchor = {"question": place.question}
        elif index % 3 == 2:
            anchor = {"assignment": place.assignment}
        thread = start_thread(authors[index % 3], place.category, title=f"Thread {index}", **anchor)
        if index % 4 == 0:
            reply_to(authors[(index + 1) % 3], thread)
    return place.category


def test_the_category_page_query_count(
    client_for, cast, place, busy_category, django_assert_num_queries
):
    client = client_for(cast.student)
    url = reverse("forum:category_chapter", args=[cast.course.slug, place.chapter.slug])
    client.get(url)  # records the visit: the measured view reads it and writes nothing
    for thread in Thread.objects.all()[:5]:
        client.get(reverse("forum:thread_detail", args=[thread.pk]))

    # user; the course with the reader's enrolment, the category and its chapter (with its
    # stored thread count), the reader's visit and whether they watch it; the page of threads
    # with authors, anchors and the reader's read marks
    with django_assert_num_queries(3):
        response = client.get(url)
    assert response.status_code == 200 and b"Thread 39" in response.content
    assert b"40 threads." in response.content
    with django_assert_num_queries(3):
        assert client.get(url + "?page=2").status_code == 200


@pytest.fixture
def long_thread(cast, place):
    """A thread of 100 posts by 20 people (some staff), with likes and an accepted answer."""
    thread = start_thread(cast.student, place.category, question=place.question)
    people = [cast.other_student, cast.ta, cast.instructor]
    for index in range(17):
        person = UserFactory(username=f"reader{index}")
        EnrolmentFactory(user=person, course=cast.course)
        people.append(person)
    bulk_replies(thread, people, 99)
    posts = list(thread.posts.order_by("number"))
    PostLike.objects.bulk_create(PostLike(post=post, user=cast.student) for post in posts[1::2])
    Thread.objects.filter(pk=thread.pk).update(accepted_post=posts[10])
    return thread


@pytest.mark.parametrize("page", ["1", "3", "5"])
def test_a_thread_page_of_a_100_post_thread_query_count(
    client_for, cast, long_thread, page, django_assert_num_queries
):
    client = client_for(cast.other_student)
    url = reverse("forum:thread_detail", args=[long_thread.pk]) + f"?page={page}"
    client.get(url)  # the first view records how far the reader got

    # user; the thread with its course, category, anchor, accepted answer, the reader's
    # enrolment, watch and read mark, and whether they submitted the question (spoilers); the
    # page's posts with authors, attached runs, the reader's likes and the authors' roles
    with django_assert_num_queries(3):
        response = client.get(url)
    assert response.status_code == 200
    assert response.content.count(b'class="post card') == 20


def test_reading_new_posts_costs_two_writes_and_no_more(
    client_for, cast, long_thread, django_assert_num_queries
):
    client = client_for(cast.other_student)
    url = reverse("forum:thread_detail", args=[long_thread.pk])

    # the three reads, then the read mark and the notifications about those posts
    with django_assert_num_queries(5):
        assert client.get(url + "?page=2").status_code == 200


def test_the_forum_index_query_count_does_not_grow_with_chapters(
    client_for, cast, busy_category, django_assert_num_queries
):
    from tests.factories import ChapterFactory

    for _ in range(8):
        ChapterFactory(course=cast.course)
    client = client_for(cast.student)
    url = reverse("forum:index", args=[cast.course.slug])
    client.get(url)  # makes the new chapters' categories

    # user, enrolment+course, existing categories, chapters (the sync), categories, counts,
    # visits, unread, watches, open flags (staff only: none here)
    with django_assert_num_queries(9):
        assert client.get(url).status_code == 200


def test_the_notifications_page_query_count(
    client_for, cast, busy_category, django_assert_num_queries
):
    client = client_for(cast.student)
    # user, the count, the page of notifications with actors, threads and posts
    with django_assert_num_queries(3):
        assert client.get(reverse("forum:notifications")).status_code == 200
