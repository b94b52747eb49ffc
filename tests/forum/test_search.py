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
from tests.grader.factories import SubmissionFactory

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


def snippets(user, course, query: str, page: int = 1) -> list[str]:
    access = course_access_for_user(user=user, course_slug=course.slug)
    return [
        str(hit.snippet)
        for hit in search.posts_search(access=access, user=user, query=query, page=page).hits
    ]


def test_the_excerpt_marks_the_matched_word_as_written_and_escapes_the_rest(cast, place):
    start_thread(
        cast.student,
        place.category,
        title="Odd output",
        body='My schedulers <script>alert("x")</script> & "warmup" diverge',
    )

    (snippet,) = snippets(cast.other_student, cast.course, "scheduler")

    assert "<mark>schedulers</mark>" in snippet
    assert "<script>" not in snippet and "alert(&quot;x&quot;)" in snippet and "&amp;" in snippet


def test_the_excerpt_of_a_long_post_is_taken_around_a_deep_match(cast, place):
    before = " ".join(f"before{index}" for index in range(400))
    after = " ".join(f"after{index}" for index in range(400))
    start_thread(
        cast.student, place.category, title="Long", body=f"{before} the cosine annealing {after}"
    )

    (snippet,) = snippets(cast.other_student, cast.course, "annealing")

    assert "<mark>annealing</mark>" in snippet and "before399 the cosine" in snippet
    assert "before0 " not in snippet and "after399" not in snippet


def test_results_page_on_by_rank_then_newest(cast, place, monkeypatch):
    monkeypatch.setattr(search, "RESULTS_PER_PAGE", 2)
    titled = start_thread(cast.student, place.category, title="Dropout rate", body="Which one?")
    thread = start_thread(cast.student, place.category, title="Warmup", body="A warmup question")
    replies = [reply_to(cast.other_student, thread, f"dropout try {n}") for n in range(3)]
    access = course_access_for_user(user=cast.student, course_slug=cast.course.slug)

    first = search.posts_search(access=access, user=cast.student, query="dropout")
    second = search.posts_search(access=access, user=cast.student, query="dropout", page=2)

    assert [hit.post.pk for hit in first.hits] == [titled.posts.get().pk, replies[2].pk]
    assert first.has_next and [hit.post.pk for hit in second.hits] == [replies[1].pk, replies[0].pk]
    assert not second.has_next and first.hits[0].post.thread.title == "Dropout rate"
    assert first.hits[1].post.author.public_name == cast.other_student.public_name


def test_hidden_posts_are_found_by_their_author_and_staff_only(cast, place, client_for):
    thread = start_thread(cast.student, place.category, title="Warmup", body="A warmup question")
    rude = reply_to(cast.other_student, thread, "a rude remark")
    client_for(cast.ta).post(reverse("forum:post_moderate", args=[rude.pk]), {"action": "hide"})

    assert results(cast.student, cast.course, "rude") == []
    assert results(cast.other_student, cast.course, "rude") == [rude.pk]
    assert results(cast.instructor, cast.course, "rude") == [rude.pk]


def test_an_assignment_answer_is_found_once_the_reader_has_submitted(cast, place):
    thread = start_thread(cast.student, place.category, assignment=place.assignment)
    answer = reply_to(cast.ta, thread, "Normalise the pixels first", contains_answer=True)
    other_thread = start_thread(cast.student, place.category, title="Hidden one", body="x")
    other_thread.is_hidden = True
    other_thread.save(update_fields=["is_hidden"])
    assert results(cast.other_student, cast.course, "normalise pixels") == []

    SubmissionFactory(user=cast.other_student, assignment=place.assignment)

    assert results(cast.other_student, cast.course, "normalise pixels") == [answer.pk]
