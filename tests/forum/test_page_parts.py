"""The thread and category pages' cached parts (forum.page_parts) show each reader their own."""

from __future__ import annotations

import pytest
from django.urls import reverse

from forum import access, services
from forum.models import Thread
from tests.forum.conftest import reply_to, start_thread

pytestmark = pytest.mark.django_db


def page_of(client, thread) -> str:
    return client.get(reverse("forum:thread_detail", args=[thread.pk])).content.decode()


def test_a_student_after_staff_gets_no_staff_tools_and_their_own_watch(client_for, cast, place):
    thread = start_thread(cast.student, place.category)

    staff_page = page_of(client_for(cast.ta), thread)
    author_page = page_of(client_for(cast.student), thread)
    reader_page = page_of(client_for(cast.other_student), thread)

    assert 'value="pin"' in staff_page and ">Split</a>" in staff_page
    for page in (author_page, reader_page):
        assert 'value="pin"' not in page and ">Split</a>" not in page
    assert 'aria-pressed="true">Watching<' in author_page
    assert 'aria-pressed="false">Watch<' in reader_page
    assert 'aria-pressed="false">Watch<' in staff_page


def test_the_head_forms_carry_the_readers_csrf_token(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    client = client_for(cast.ta)

    page = page_of(client, thread)

    token_fields = page.count('name="csrfmiddlewaretoken"')
    # watch, moderate, the post's like/accept/moderate forms, the reply form, log out
    assert token_fields >= 4
    assert "<!--csrf-" not in page


def test_the_head_shows_the_anchor_the_lock_and_the_accepted_answer(client_for, cast, place):
    thread = start_thread(cast.student, place.category, question=place.question)
    answer = reply_to(cast.ta, thread)
    client = client_for(cast.student)
    before = page_of(client, thread)
    Thread.objects.filter(pk=thread.pk).update(accepted_post=answer)
    services.thread_moderate(
        staff=access.thread_get_for_user(user=cast.ta, thread_id=thread.pk),
        action=services.ThreadAction.LOCK,
    )

    after = page_of(client, thread)

    assert "About question loss" in before and "About question loss" in after
    assert "Accepted answer:" not in before and "Locked</span>" not in before
    assert f'href="{reverse("forum:thread_detail", args=[thread.pk])}#post-2">post #2</a>' in after
    assert "Locked</span>" in after and ">Answered</span>" in after


def test_the_threads_about_a_question_have_their_own_head(client_for, cast, place):
    start_thread(cast.student, place.category, question=place.question, title="About the loss")
    client = client_for(cast.other_student)
    category_page = client.get(
        reverse("forum:category_chapter", args=[cast.course.slug, place.chapter.slug])
    ).content.decode()

    anchor_page = client.get(
        reverse("forum:anchor_detail", args=[cast.course.slug, "question", place.question.pk])
    ).content.decode()

    assert "<h1>Question loss</h1>" in anchor_page and "Ask about this" in anchor_page
    assert f"Threads about this question, in {place.chapter.title}." in anchor_page
    assert "Watch this category" not in anchor_page and "Threads about this</span>" in anchor_page
    assert f"<h1>{place.chapter.title}</h1>" in category_page
    assert "Watch this category" in category_page and "Ask about this" not in category_page
    assert "<!--csrf-" not in category_page
