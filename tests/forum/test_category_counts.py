"""Each category keeps its count of visible and hidden threads, for its page's pagination: the
count stays right whatever the services and the admin do to threads."""

from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.test import RequestFactory
from django.urls import reverse

from forum import services
from forum.models import Category, Thread
from tests.factories import ChapterFactory
from tests.forum.conftest import reply_to, start_thread

pytestmark = pytest.mark.django_db


def stored(category: Category) -> tuple[int, int]:
    category.refresh_from_db()
    return category.thread_count, category.hidden_thread_count


def counted(category: Category) -> tuple[int, int]:
    threads = Thread.objects.filter(category=category)
    return threads.filter(is_hidden=False).count(), threads.filter(is_hidden=True).count()


def test_new_threads_are_counted_in_their_category(cast, place):
    general = services.category_ensure(course=cast.course, chapter=None)
    for _ in range(3):
        start_thread(cast.student, place.category)
    start_thread(cast.student, general)

    assert stored(place.category) == counted(place.category) == (3, 0)
    assert stored(general) == (1, 0)


def test_hiding_and_showing_a_thread_moves_it_between_the_counts(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    start_thread(cast.student, place.category)
    client = client_for(cast.ta)
    url = reverse("forum:thread_moderate", args=[thread.pk])

    client.post(url, {"action": "hide"})
    client.post(url, {"action": "hide"})  # twice: counted once
    assert stored(place.category) == counted(place.category) == (1, 1)
    client.post(url, {"action": "pin"})
    assert stored(place.category) == (1, 1)
    client.post(url, {"action": "unhide"})
    assert stored(place.category) == counted(place.category) == (2, 0)


def test_moving_a_thread_moves_its_count(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    hidden = start_thread(cast.student, place.category)
    other = services.category_ensure(course=cast.course, chapter=ChapterFactory(course=cast.course))
    client = client_for(cast.ta)
    client.post(reverse("forum:thread_moderate", args=[hidden.pk]), {"action": "hide"})

    for moved in (thread, hidden):
        client.post(reverse("forum:thread_move", args=[moved.pk]), {"category": other.pk})
    client.post(reverse("forum:thread_move", args=[thread.pk]), {"category": other.pk})

    assert stored(place.category) == counted(place.category) == (0, 0)
    assert stored(other) == counted(other) == (1, 1)


def test_splitting_a_thread_counts_the_new_one(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    for text in ("on topic", "off topic"):
        reply_to(cast.other_student, thread, text)
    general = services.category_ensure(course=cast.course, chapter=None)

    client_for(cast.instructor).post(
        reverse("forum:thread_split", args=[thread.pk]),
        {"numbers": ["3"], "title": "The off-topic part", "category": general.pk},
    )

    assert stored(place.category) == (1, 0) and stored(general) == counted(general) == (1, 0)


def test_the_admin_counts_again_what_it_changes_or_deletes(cast, place, admin_user):
    general = services.category_ensure(course=cast.course, chapter=None)
    threads = [start_thread(cast.student, place.category) for _ in range(4)]
    admin = site._registry[Thread]
    request = RequestFactory().post("/")
    request.user = admin_user

    admin.delete_model(request, threads[0])
    admin.delete_queryset(request, Thread.objects.filter(pk=threads[1].pk))
    threads[2].category, threads[2].is_hidden = general, True
    form = admin.get_form(request, threads[2])(instance=Thread.objects.get(pk=threads[2].pk))
    admin.save_model(request, threads[2], form, change=True)

    assert stored(place.category) == counted(place.category) == (1, 0)
    assert stored(general) == counted(general) == (0, 1)


def test_the_category_page_counts_hidden_threads_for_staff_only(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    start_thread(cast.student, place.category)
    client_for(cast.ta).post(reverse("forum:thread_moderate", args=[thread.pk]), {"action": "hide"})
    url = reverse("forum:category_chapter", args=[cast.course.slug, place.chapter.slug])

    assert b"1 thread." in client_for(cast.student).get(url).content
    assert b"2 threads." in client_for(cast.instructor).get(url).content
