"""Replies, mentions, accepted answers and watched activity reach the right people: in the site,
and by email for those who asked (each, or a daily digest)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from forum import notifications, services
from forum.access import thread_get_for_user
from forum.models import Notification, NotificationPreference
from tests.forum.conftest import reply_to, start_thread

pytestmark = pytest.mark.django_db


def kinds(user) -> list[str]:
    return list(
        Notification.objects.filter(user=user).order_by("id").values_list("kind", flat=True)
    )


def test_a_reply_notifies_the_threads_author(cast, place):
    thread = start_thread(cast.student, place.category)

    reply_to(cast.other_student, thread)

    note = Notification.objects.get(user=cast.student)
    assert (note.kind, note.actor, note.thread) == ("reply", cast.other_student, thread)
    assert kinds(cast.other_student) == []  # nobody hears of their own posts


def test_a_mention_notifies_a_member_once_and_marks_the_name(cast, place):
    thread = start_thread(cast.student, place.category)

    post = reply_to(cast.other_student, thread, "@student and @ta, see this. @ta again.")

    assert kinds(cast.ta) == ["mention"]
    assert kinds(cast.student) == ["mention"]  # a mention outranks a reply
    assert '<span class="mention">@ta</span>' in post.body_html


def test_mentions_in_code_and_of_outsiders_notify_nobody(cast, place):
    thread = start_thread(cast.student, place.category)

    post = reply_to(cast.other_student, thread, "`@ta` and\n\n```\n@instructor\n```\n\n@outsider")

    assert kinds(cast.ta) == [] and kinds(cast.instructor) == [] and kinds(cast.outsider) == []
    assert "mention" not in post.body_html


def test_an_edit_notifies_only_the_newly_mentioned(cast, place):
    thread = start_thread(cast.student, place.category)
    post = reply_to(cast.other_student, thread, "Asking @ta")

    services.post_edit(
        editor=cast.other_student,
        thread_access=thread_get_for_user(user=cast.other_student, thread_id=thread.pk),
        post=post,
        body="Asking @ta and @instructor",
    )

    assert kinds(cast.ta) == ["mention"] and kinds(cast.instructor) == ["mention"]


def test_accepting_an_answer_notifies_its_author(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    answer = reply_to(cast.other_student, thread)

    client_for(cast.student).post(reverse("forum:post_accept", args=[answer.pk]))

    assert kinds(cast.other_student) == ["accepted"]


def test_watchers_of_a_thread_and_of_a_category_hear_of_new_posts(client_for, cast, place):
    client_for(cast.instructor).post(
        reverse("forum:category_chapter_watch", args=[cast.course.slug, place.chapter.slug])
    )
    thread = start_thread(cast.student, place.category)
    assert kinds(cast.instructor) == ["watched"]
    reply_to(cast.other_student, thread)
    reply_to(cast.ta, thread)

    assert kinds(cast.other_student) == ["watched"]  # replying watched the thread
    assert kinds(cast.instructor) == ["watched"] * 3


def test_only_staff_hear_of_posts_in_a_hidden_thread(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    reply_to(cast.other_student, thread)
    Notification.objects.all().delete()
    client_for(cast.ta).post(reverse("forum:thread_moderate", args=[thread.pk]), {"action": "hide"})

    reply_to(cast.instructor, thread, "@student @other @ta please stop")

    assert kinds(cast.student) == [] and kinds(cast.other_student) == []
    assert kinds(cast.ta) == ["mention"]


def test_the_bell_counts_unread_notifications(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    reply_to(cast.other_student, thread)
    reply_to(cast.ta, thread, "@student look")
    client = client_for(cast.student)

    count = client.get(reverse("forum:notification_count")).json()["unread"]
    client.post(reverse("forum:notifications_read_all"))

    assert count == 2
    assert client.get(reverse("forum:notification_count")).json()["unread"] == 0
    assert b"data-notification-bell" in client.get(reverse("home")).content


def test_opening_a_notification_reads_it_and_goes_to_the_post(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    post = reply_to(cast.other_student, thread)
    note = Notification.objects.get(user=cast.student)

    response = client_for(cast.student).get(reverse("forum:notification_open", args=[note.pk]))

    note.refresh_from_db()
    assert note.read_at is not None
    assert response["Location"].endswith(f"#post-{post.number}")


# --- Email --------------------------------------------------------------------------------------


@pytest.fixture
def queued(monkeypatch):
    """The ids handed to Celery, once the transaction commits."""
    from forum import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks.notification_email_send_task, "delay", sent.append)
    return sent


def test_email_is_queued_after_commit_only_for_those_who_asked(
    cast, place, queued, django_capture_on_commit_callbacks
):
    NotificationPreference.objects.create(user=cast.student, email_each=True)
    thread = start_thread(cast.student, place.category)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reply_to(cast.other_student, thread, "@ta have a look")
    assert queued == []  # nothing leaves before the transaction commits
    for callback in callbacks:
        callback()

    assert queued == [Notification.objects.get(user=cast.student).pk]


def test_a_notification_email_is_sent_once_and_carries_no_post_text(cast, place, mailoutbox):
    NotificationPreference.objects.create(user=cast.student, email_each=True)
    thread = start_thread(cast.student, place.category)
    reply_to(cast.other_student, thread, "The secret answer text")
    note = Notification.objects.get(user=cast.student)

    assert notifications.notification_email_send(notification_id=note.pk) is True
    assert notifications.notification_email_send(notification_id=note.pk) is False

    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == [cast.student.email]
    assert "replied in your thread" in mail.subject
    assert "secret answer" not in mail.body
    assert f"/forum/notifications/{note.pk}/" in mail.body


def test_a_failed_send_is_released_for_the_retry(cast, place, monkeypatch):
    NotificationPreference.objects.create(user=cast.student, email_each=True)
    thread = start_thread(cast.student, place.category)
    reply_to(cast.other_student, thread)
    note = Notification.objects.get(user=cast.student)

    def broken(**kwargs):
        raise OSError("mail server down")

    monkeypatch.setattr(notifications, "send_mail", broken)
    with pytest.raises(OSError):
        notifications.notification_email_send(notification_id=note.pk)

    note.refresh_from_db()
    assert note.emailed_at is None


def test_the_daily_digest_lists_unread_notifications_once_a_day(cast, place, mailoutbox):
    NotificationPreference.objects.create(user=cast.student, email_digest=True)
    NotificationPreference.objects.create(user=cast.other_student, email_digest=False)
    thread = start_thread(cast.student, place.category, title="Digest me")
    reply_to(cast.other_student, thread)
    reply_to(cast.ta, thread)
    now = timezone.now() + timedelta(minutes=1)

    assert notifications.digests_send(now=now) == 1
    assert notifications.digests_send(now=now + timedelta(hours=2)) == 0  # not yet a day

    assert len(mailoutbox) == 1
    assert "2 forum notifications" in mailoutbox[0].subject
    assert mailoutbox[0].body.count('"Digest me"') == 2
    post = reply_to(cast.other_student, thread, "one more")
    Notification.objects.filter(post=post).update(created_at=now + timedelta(hours=3))
    assert notifications.digests_send(now=now + timedelta(days=1)) == 1
    assert "1 forum notification" in mailoutbox[1].subject


def test_the_settings_page_turns_email_on(client_for, cast):
    client = client_for(cast.student)

    client.post(reverse("forum:preferences"), {"email_each": "on", "email_digest": "on"})

    preference = NotificationPreference.objects.get(user=cast.student)
    assert preference.email_each and preference.email_digest
