"""New accounts post at most so often and with so many links; every post has a size cap."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from forum.models import Post
from tests.forum.conftest import start_thread

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    settings.FORUM_NEW_ACCOUNT_DAYS = 3
    settings.FORUM_NEW_ACCOUNT_POSTS_PER_MINUTE = 2
    settings.FORUM_NEW_ACCOUNT_LINKS_PER_POST = 2
    settings.FORUM_POSTS_PER_MINUTE = 10
    return settings


def age(user, days: int) -> None:
    user.date_joined = timezone.now() - timedelta(days=days)
    user.save(update_fields=["date_joined"])


def reply(client, thread, body: str):
    return client.post(reverse("forum:thread_reply", args=[thread.pk]), {"body": body})


def test_a_new_account_posts_at_most_so_often_a_minute(client_for, cast, place, limits):
    age(cast.student, 30)
    thread = start_thread(cast.student, place.category)
    client = client_for(cast.other_student)  # joined just now

    statuses = [reply(client, thread, f"Reply {i}").status_code for i in range(3)]

    assert statuses == [302, 302, 200]
    third = reply(client, thread, "Reply 3")
    assert b"may post at most 2 times a minute" in third.content
    assert b"Reply 3</textarea>" in third.content  # the text is kept for posting again
    assert Post.objects.filter(author=cast.other_student).count() == 2


def test_the_minute_passes_and_a_new_account_may_post_again(client_for, cast, place, limits):
    age(cast.student, 30)
    thread = start_thread(cast.student, place.category)
    client = client_for(cast.other_student)
    reply(client, thread, "One")
    reply(client, thread, "Two")
    Post.objects.filter(author=cast.other_student).update(
        created_at=timezone.now() - timedelta(seconds=61)
    )

    assert reply(client, thread, "Three").status_code == 302


def test_older_accounts_have_a_looser_flood_limit(client_for, cast, place, limits):
    age(cast.student, 30)
    age(cast.other_student, 30)
    thread = start_thread(cast.student, place.category)
    client = client_for(cast.other_student)

    statuses = [reply(client, thread, f"Reply {i}").status_code for i in range(11)]

    assert statuses == [302] * 10 + [200]


def test_a_new_account_may_not_post_many_links(client_for, cast, place, limits):
    age(cast.student, 30)
    thread = start_thread(cast.student, place.category)
    client = client_for(cast.other_student)
    three = "[a](https://a.example) <https://b.example> and www.c.example"

    refused = reply(client, thread, three)
    allowed = reply(client, thread, "[a](https://a.example) and https://b.example")

    assert b"at most 2 links per post (this one has 3)" in refused.content
    assert allowed.status_code == 302
    assert not Post.objects.filter(body=three).exists()


def test_links_are_not_limited_once_the_account_is_older(client_for, cast, place, limits):
    age(cast.student, 30)
    age(cast.other_student, 4)
    thread = start_thread(cast.student, place.category)

    response = reply(
        client_for(cast.other_student), thread, " ".join(f"https://{i}.example" for i in range(6))
    )

    assert response.status_code == 302


def test_staff_are_never_rate_limited(client_for, cast, place, limits):
    thread = start_thread(cast.ta, place.category)  # the TA joined just now
    client = client_for(cast.ta)

    statuses = [
        reply(
            client, thread, f"See https://{i}.example and https://x{i}.example and www.y.z"
        ).status_code
        for i in range(12)
    ]

    assert statuses == [302] * 12


def test_new_threads_count_towards_the_rate_limit_too(client_for, cast, place, limits):
    client = client_for(cast.other_student)
    url = reverse("forum:thread_create", args=[cast.course.slug])

    statuses = [
        client.post(url, {"title": f"Question {i}", "body": "Help"}).status_code for i in range(3)
    ]

    assert statuses == [302, 302, 200]


def test_every_post_has_a_size_cap(client_for, cast, place, settings):
    thread = start_thread(cast.student, place.category)
    client = client_for(cast.ta)  # staff too: the cap protects every reader's page
    cap = settings.FORUM_POST_MAX_CHARS

    too_long = reply(client, thread, "x" * (cap + 1))
    at_cap = reply(client, thread, "y" * cap)

    assert too_long.status_code == 200 and b"at most" in too_long.content
    assert at_cap.status_code == 302
    assert not Post.objects.filter(body__startswith="xxx").exists()


def test_the_size_cap_holds_in_the_service_too(cast, place, settings):
    from forum.rules import PostRefused

    settings.FORUM_POST_MAX_CHARS = 50
    with pytest.raises(PostRefused, match="at most 50 characters"):
        start_thread(cast.student, place.category, body="z" * 51)
