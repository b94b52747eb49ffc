"""Threads and posts as people use them: asking, replying, quoting, liking, accepting, editing,
watching, reading, and staff tidying up (pin, lock, move, split)."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from courses.models import Chapter
from forum import services
from forum.access import thread_get_for_user
from forum.models import Category, Notification, Post, PostRevision, Thread, ThreadRead, Watch
from tests.factories import ChapterFactory
from tests.forum.conftest import bulk_replies, reply_to, start_thread

pytestmark = pytest.mark.django_db


def test_every_chapter_gets_a_category_and_the_course_a_general_one(client_for, cast):
    ChapterFactory(course=cast.course, title="Second chapter")

    page = client_for(cast.student).get(reverse("forum:index", args=[cast.course.slug]))

    assert page.status_code == 200
    chapters = Chapter.objects.filter(course=cast.course)
    assert Category.objects.filter(course=cast.course, kind="chapter").count() == chapters.count()
    assert Category.objects.filter(course=cast.course, kind="general").count() == 1
    assert b"Second chapter" in page.content and b"General" in page.content


def test_a_student_starts_a_thread_with_code_and_maths(client_for, cast, place):
    body = "My loss is $L = -\\log p$ and:\n\n```python\nloss.backward()\n```\n"
    url = reverse("forum:thread_create", args=[cast.course.slug]) + f"?question={place.question.pk}"

    response = client_for(cast.student).post(url, {"title": "Loss explodes", "body": body})

    thread = Thread.objects.get(title="Loss explodes")
    assert response.status_code == 302
    assert thread.question == place.question and thread.category == place.category
    post = thread.posts.get()
    assert '<span class="math inline">L = -\\log p</span>' in post.body_html
    assert '<pre class="highlight">' in post.body_html
    page = client_for(cast.other_student).get(reverse("forum:thread_detail", args=[thread.pk]))
    assert b"Loss explodes" in page.content and b"highlight" in page.content


def test_replies_are_numbered_in_order_and_the_thread_counts_them(cast, place):
    thread = start_thread(cast.student, place.category)

    first = reply_to(cast.other_student, thread)
    second = reply_to(cast.ta, thread)

    thread.refresh_from_db()
    assert (first.number, second.number) == (2, 3)
    assert thread.post_count == 3 and thread.last_poster == cast.ta


def test_quoting_prefills_the_reply_with_the_post_and_its_author(client_for, cast, place):
    thread = start_thread(cast.student, place.category, body="Why is my loss NaN?")
    client = client_for(cast.other_student)

    page = client.get(
        reverse("forum:thread_reply", args=[thread.pk]) + f"?quote={thread.posts.get().pk}"
    )

    assert b"&gt; @student wrote in [#1]" in page.content
    assert b"&gt; Why is my loss NaN?" in page.content


def test_likes_toggle_and_are_counted_once_per_person(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    post = thread.posts.get()
    url = reverse("forum:post_like", args=[post.pk])

    client_for(cast.other_student).post(url)
    client_for(cast.ta).post(url)
    post.refresh_from_db()
    assert post.like_count == 2

    client_for(cast.ta).post(url)
    post.refresh_from_db()
    assert post.like_count == 1


def test_the_like_form_carries_the_readers_csrf_token_and_shows_their_own_like(cast, place):
    # Posts are drawn once per process (topdown.fragments); the token and the like are the
    # reader's own.
    thread = start_thread(cast.student, place.category)
    page_url = reverse("forum:thread_detail", args=[thread.pk])
    liker, other = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    liker.force_login(cast.other_student)
    other.force_login(cast.ta)
    page = liker.get(page_url).content.decode()
    form = re.search(
        r'<form method="post" action="([^"]+)"><input type="hidden" '
        r'name="csrfmiddlewaretoken" value="([^"]+)">',
        page,
    )
    assert form is not None and "<!--csrf" not in page

    response = liker.post(form[1], {"csrfmiddlewaretoken": form[2]})

    assert response.status_code == 302
    assert thread.posts.get().like_count == 1
    assert "♥ Liked" in liker.get(page_url).content.decode()
    assert "♥ Liked" not in other.get(page_url).content.decode()


def test_nobody_likes_their_own_post(client_for, cast, place):
    thread = start_thread(cast.student, place.category)

    response = client_for(cast.student).post(
        reverse("forum:post_like", args=[thread.posts.get().pk])
    )

    assert response.status_code == 403
    assert thread.posts.get().like_count == 0


def test_the_thread_author_accepts_an_answer_and_can_change_their_mind(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    answer = reply_to(cast.other_student, thread, "Normalise your inputs.")
    client = client_for(cast.student)

    client.post(reverse("forum:post_accept", args=[answer.pk]))
    thread.refresh_from_db()
    assert thread.accepted_post == answer
    page = client.get(reverse("forum:thread_detail", args=[thread.pk]))
    assert b"Accepted answer" in page.content

    client.post(reverse("forum:post_accept", args=[answer.pk]))
    thread.refresh_from_db()
    assert thread.accepted_post is None


def test_the_opening_post_cannot_be_the_answer(client_for, cast, place):
    thread = start_thread(cast.student, place.category)

    client_for(cast.student).post(reverse("forum:post_accept", args=[thread.posts.get().pk]))

    thread.refresh_from_db()
    assert thread.accepted_post is None


def test_editing_keeps_every_earlier_version_visible(client_for, cast, place):
    thread = start_thread(cast.student, place.category, title="Old title", body="First words")
    post = thread.posts.get()
    client = client_for(cast.student)
    edit = reverse("forum:post_edit", args=[post.pk])

    client.post(edit, {"title": "New title", "body": "Second words"})
    client.post(edit, {"title": "New title", "body": "Third words"})

    post.refresh_from_db()
    thread.refresh_from_db()
    assert post.body == "Third words" and post.edit_count == 2 and thread.title == "New title"
    assert list(PostRevision.objects.filter(post=post).values_list("body", flat=True)) == [
        "First words",
        "Second words",
    ]
    history = client_for(cast.other_student).get(reverse("forum:post_history", args=[post.pk]))
    assert b"-First words" in history.content and b"+Second words" in history.content
    assert b"Old title" in history.content
    page = client_for(cast.other_student).get(reverse("forum:thread_detail", args=[thread.pk]))
    assert b"edited 2 times" in page.content


def test_posting_watches_the_thread_and_the_watch_button_toggles(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    reply_to(cast.other_student, thread)
    assert Watch.objects.filter(thread=thread, user=cast.other_student).exists()

    client_for(cast.other_student).post(reverse("forum:thread_watch", args=[thread.pk]))

    assert not Watch.objects.filter(thread=thread, user=cast.other_student).exists()


def test_unread_posts_are_counted_per_thread_until_read(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    client = client_for(cast.other_student)
    category_url = reverse("forum:category_chapter", args=[cast.course.slug, place.chapter.slug])
    client.get(reverse("forum:thread_detail", args=[thread.pk]))
    assert ThreadRead.objects.get(user=cast.other_student, thread=thread).last_read_number == 1

    reply_to(cast.student, thread, "Any ideas?")
    reply_to(cast.ta, thread, "Look at the gradient norms.")

    listing = client.get(category_url)
    assert b"2 new" in listing.content
    jump = client.get(reverse("forum:thread_unread", args=[thread.pk]))
    assert jump["Location"].endswith("#post-2")
    client.get(reverse("forum:thread_detail", args=[thread.pk]))
    assert b"2 new" not in client.get(category_url).content


def test_a_category_counts_threads_active_since_the_last_visit(client_for, cast, place):
    client = client_for(cast.other_student)
    index = reverse("forum:index", args=[cast.course.slug])
    category_url = reverse("forum:category_chapter", args=[cast.course.slug, place.chapter.slug])
    client.get(category_url)

    start_thread(cast.student, place.category, title="Fresh thread")

    assert b"1 new" in client.get(index).content
    listing = client.get(category_url)
    assert b"Fresh thread" in listing.content


def test_pinned_threads_come_first(client_for, cast, place):
    old = start_thread(cast.student, place.category, title="Course logistics")
    start_thread(cast.student, place.category, title="Newer question")
    client_for(cast.instructor).post(
        reverse("forum:thread_moderate", args=[old.pk]), {"action": "pin"}
    )

    page = client_for(cast.student).get(
        reverse("forum:category_chapter", args=[cast.course.slug, place.chapter.slug])
    )

    content = page.content.decode()
    assert content.index("Course logistics") < content.index("Newer question")


def test_moving_a_thread_to_another_chapter_drops_its_anchor(client_for, cast, place):
    thread = start_thread(cast.student, place.category, question=place.question)
    other = services.category_ensure(course=cast.course, chapter=ChapterFactory(course=cast.course))

    client_for(cast.ta).post(reverse("forum:thread_move", args=[thread.pk]), {"category": other.pk})

    thread.refresh_from_db()
    assert thread.category == other and thread.question is None


def test_splitting_moves_replies_to_a_new_thread_and_renumbers_both(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    for text in ("on topic", "off topic A", "on topic again", "off topic B"):
        reply_to(cast.other_student, thread, text)

    response = client_for(cast.instructor).post(
        reverse("forum:thread_split", args=[thread.pk]),
        {"numbers": ["3", "5"], "title": "The off-topic part", "category": place.category.pk},
    )

    new = Thread.objects.get(title="The off-topic part")
    assert response.status_code == 302
    assert list(new.posts.order_by("number").values_list("number", "body")) == [
        (1, "off topic A"),
        (2, "off topic B"),
    ]
    assert list(thread.posts.order_by("number").values_list("number", "body"))[1:] == [
        (2, "on topic"),
        (3, "on topic again"),
    ]
    thread.refresh_from_db()
    new.refresh_from_db()
    assert (thread.post_count, new.post_count) == (3, 2)


def test_a_long_thread_is_paged_and_the_last_page_holds_the_last_post(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    bulk_replies(thread, [cast.other_student, cast.ta], 44)

    page = client_for(cast.student).get(
        reverse("forum:thread_detail", args=[thread.pk]) + "?page=3"
    )

    assert b"Page 3 of 3" in page.content
    assert b'id="post-45"' in page.content and b'id="post-40"' not in page.content


def test_reading_a_thread_marks_its_notifications_read(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    reply_to(cast.other_student, thread)
    assert Notification.objects.filter(user=cast.student, read_at__isnull=True).count() == 1

    client_for(cast.student).get(reverse("forum:thread_detail", args=[thread.pk]))

    assert Notification.objects.filter(user=cast.student, read_at__isnull=True).count() == 0


def test_search_finds_posts_and_ranks_a_title_match_above_a_body_match(client_for, cast, place):
    start_thread(cast.student, place.category, title="Gradient clipping", body="How much?")
    in_body = start_thread(
        cast.student, place.category, title="Other", body="I read about gradient clipping."
    )
    start_thread(cast.student, place.category, title="Unrelated", body="Batch norm question")

    page = client_for(cast.other_student).get(
        reverse("forum:search", args=[cast.course.slug]), {"q": "gradient clipping"}
    )

    content = page.content.decode()
    assert content.index("Gradient clipping") < content.index(
        f"/forum/posts/{in_body.posts.get().pk}/"
    )
    assert "Unrelated" not in content
    assert "<mark>" in content


def test_search_falls_back_to_icontains_without_postgresql(client_for, cast, place, monkeypatch):
    import forum.search

    start_thread(cast.student, place.category, title="Dropout rate", body="Is 0.5 too much?")
    start_thread(cast.student, place.category, title="Other", body="Nothing to see")

    class SQLite:
        vendor = "sqlite"

    monkeypatch.setattr(forum.search, "connection", SQLite())
    page = client_for(cast.other_student).get(
        reverse("forum:search", args=[cast.course.slug]), {"q": "dropout"}
    )

    assert b"Dropout rate" in page.content and b"Nothing to see" not in page.content
    assert b"<mark>Dropout</mark>" not in page.content  # the title is not the excerpt
    assert b"Is 0.5 too much?" in page.content


def test_discuss_this_shows_thread_counts_on_chapter_questionnaire_and_assignment(
    client_for, cast, place
):
    start_thread(cast.student, place.category, question=place.question)
    start_thread(cast.student, place.category, assignment=place.assignment)
    client = client_for(cast.student)
    chapter = place.chapter

    chapter_page = client.get(reverse("chapter_detail", args=[cast.course.slug, chapter.slug]))
    questionnaire_page = client.get(
        reverse("questionnaire_detail", args=[cast.course.slug, chapter.slug])
    )
    assignment_page = client.get(reverse("assignment_detail", args=[place.assignment.slug]))

    assert b"2 threads on the forum" in chapter_page.content
    assert b"1 thread</span>" in questionnaire_page.content
    assert b'Discuss this <span class="muted small">(1 thread)' in assignment_page.content
    anchor = reverse(
        "forum:anchor_detail", args=[cast.course.slug, "assignment", place.assignment.pk]
    )
    assert anchor.encode() in assignment_page.content


def test_every_forum_model_is_in_the_admin_and_its_pages_load(client, cast, place):
    from django.apps import apps

    from tests.factories import UserFactory

    thread = start_thread(cast.student, place.category)
    reply_to(cast.other_student, thread)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for model in apps.get_app_config("forum").get_models():
        assert model in admin.site._registry, model
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert client.get(changelist).status_code == 200, changelist
        obj = model.objects.first()
        if obj is not None:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            assert client.get(change).status_code == 200, change


def test_thread_access_reads_the_readers_state_with_the_thread(cast, place):
    thread = start_thread(cast.student, place.category)

    thread_access = thread_get_for_user(user=cast.student, thread_id=thread.pk)

    assert thread_access.thread.watching is True
    assert Post.objects.filter(thread=thread).count() == 1
