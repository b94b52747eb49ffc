"""Search on PostgreSQL goes through the newest blocks of posts first, then the rest of the
course: whichever block a match is in, it is found, newest first, and only in its own course."""

from __future__ import annotations

import pytest
from django.urls import reverse

import forum.indexing
from courses.access import course_access_for_user
from forum import search, services
from forum.models import Post
from tests.factories import CourseFactory, EnrolmentFactory
from tests.forum.conftest import reply_to, start_thread

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Blocks of 2, 4 and 8 post ids, so a handful of posts spans every level and the rest."""
    monkeypatch.setattr(forum.indexing, "LEVELS", (("P", 1), ("Q", 2), ("R", 3)))
    monkeypatch.setattr(search, "LEVELS", forum.indexing.LEVELS)


def results(user, course, query: str) -> list[int]:
    access = course_access_for_user(user=user, course_slug=course.slug)
    found = search.posts_search(access=access, user=user, query=query)
    return [hit.post.pk for hit in found.hits]


def test_matches_in_every_block_are_found_newest_first(cast, place, tiny_blocks, monkeypatch):
    monkeypatch.setattr(search, "SEARCH_CANDIDATES", 200)
    thread = start_thread(cast.student, place.category, title="Warmup", body="A warmup question")
    for index in range(30):
        body = "cosine schedule" if index % 3 == 0 else "something else"
        reply_to(cast.other_student, thread, f"{body} {index}")
    matching = list(
        Post.objects.filter(body__startswith="cosine").order_by("-id").values_list("id", flat=True)
    )

    found = results(cast.student, cast.course, "cosine")

    assert len(matching) == 10 and sorted(found, reverse=True) == matching


def test_only_the_newest_candidates_are_ranked(cast, place, tiny_blocks, monkeypatch):
    monkeypatch.setattr(search, "SEARCH_CANDIDATES", 5)
    thread = start_thread(cast.student, place.category, title="Warmup", body="A warmup question")
    for index in range(12):
        reply_to(cast.other_student, thread, f"cosine schedule {index}")
    newest = list(Post.objects.order_by("-id").values_list("id", flat=True)[:5])

    assert sorted(results(cast.student, cast.course, "cosine"), reverse=True) == newest


def test_search_finds_nothing_from_another_course(cast, place, tiny_blocks):
    other_course = CourseFactory(slug="other-course")
    EnrolmentFactory(user=cast.student, course=other_course)
    other_category = services.category_ensure(course=other_course, chapter=None)
    start_thread(cast.student, other_category, title="Cosine elsewhere", body="cosine cosine")
    mine = start_thread(cast.student, place.category, title="Cosine here", body="cosine")

    assert results(cast.student, cast.course, "cosine") == [mine.posts.get().pk]


def test_a_query_of_stop_words_finds_nothing(client_for, cast, place):
    start_thread(cast.student, place.category, title="The question", body="What is it about?")

    page = client_for(cast.other_student).get(
        reverse("forum:search", args=[cast.course.slug]), {"q": "the it is"}
    )

    assert page.status_code == 200 and b"Nothing found" in page.content
