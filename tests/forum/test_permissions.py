"""Who may see and do what: outsiders, hidden threads and posts, locked threads, staff-only
actions, and a student's private run details."""

from __future__ import annotations

import pytest
from django.urls import reverse

from forum.models import Flag, Notification, Post, Thread
from tests.forum.conftest import CRASH_LOG, failed_submission, reply_to, start_thread

pytestmark = pytest.mark.django_db


def test_outsiders_see_nothing_of_a_course_forum(client_for, cast, place):
    thread = start_thread(cast.student, place.category, title="Members only")
    client = client_for(cast.outsider)

    assert client.get(reverse("forum:index", args=[cast.course.slug])).status_code == 403
    page = client.get(reverse("forum:thread_detail", args=[thread.pk]))
    assert page.status_code == 403 and b"Members only" not in page.content
    search = client.get(reverse("forum:search", args=[cast.course.slug]), {"q": "members"})
    assert search.status_code == 403


def test_outsiders_cannot_post(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    client = client_for(cast.outsider)

    reply = client.post(reverse("forum:thread_reply", args=[thread.pk]), {"body": "spam"})
    new = client.post(
        reverse("forum:thread_create", args=[cast.course.slug]), {"title": "spam", "body": "x"}
    )

    assert (reply.status_code, new.status_code) == (403, 403)
    assert Post.objects.count() == 1


def test_anonymous_visitors_are_sent_to_log_in(client, cast, place):
    thread = start_thread(cast.student, place.category)

    response = client.get(reverse("forum:thread_detail", args=[thread.pk]))

    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_hidden_thread_is_gone_for_students_but_not_for_staff(client_for, cast, place):
    thread = start_thread(cast.student, place.category, title="Leaked exam")
    client_for(cast.ta).post(reverse("forum:thread_moderate", args=[thread.pk]), {"action": "hide"})
    category_url = reverse("forum:category_chapter", args=[cast.course.slug, place.chapter.slug])

    for student in (cast.student, cast.other_student):
        client = client_for(student)
        assert client.get(reverse("forum:thread_detail", args=[thread.pk])).status_code == 404
        assert b"Leaked exam" not in client.get(category_url).content
        search = client.get(reverse("forum:search", args=[cast.course.slug]), {"q": "leaked exam"})
        assert b"Leaked exam" not in search.content
    staff = client_for(cast.instructor)
    assert staff.get(reverse("forum:thread_detail", args=[thread.pk])).status_code == 200
    assert b"Leaked exam" in staff.get(category_url).content


def test_a_hidden_post_keeps_its_place_but_not_its_text(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    rude = reply_to(cast.other_student, thread, "Something very rude")
    client_for(cast.ta).post(reverse("forum:post_moderate", args=[rude.pk]), {"action": "hide"})
    url = reverse("forum:thread_detail", args=[thread.pk])

    student_page = client_for(cast.student).get(url)
    assert b"Something very rude" not in student_page.content
    assert b"hidden by the course staff" in student_page.content
    assert b"Something very rude" in client_for(cast.other_student).get(url).content  # its author
    assert b"Something very rude" in client_for(cast.ta).get(url).content
    for action in ("forum:post_history", "forum:post_flag"):
        assert client_for(cast.student).get(reverse(action, args=[rude.pk])).status_code == 404
    quote = client_for(cast.student).get(
        reverse("forum:thread_reply", args=[thread.pk]) + f"?quote={rude.pk}"
    )
    assert quote.status_code == 404
    search = client_for(cast.student).get(
        reverse("forum:search", args=[cast.course.slug]), {"q": "rude"}
    )
    assert b"very rude" not in search.content


def test_a_locked_thread_takes_replies_from_staff_only(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    client_for(cast.instructor).post(
        reverse("forum:thread_moderate", args=[thread.pk]), {"action": "lock"}
    )
    reply_url = reverse("forum:thread_reply", args=[thread.pk])

    refused = client_for(cast.student).post(reply_url, {"body": "One more thing"})
    page = client_for(cast.student).get(reverse("forum:thread_detail", args=[thread.pk]))
    accepted = client_for(cast.ta).post(reply_url, {"body": "Locked because answered."})

    assert refused.status_code == 403
    assert b"it takes no new posts" in page.content and b"Post reply" not in page.content
    assert accepted.status_code == 302
    assert list(thread.posts.values_list("body", flat=True).order_by("number")) == [
        "I tried 0.1 and it diverges.",
        "Locked because answered.",
    ]


def test_a_locked_thread_cannot_be_edited_by_its_author(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    client_for(cast.instructor).post(
        reverse("forum:thread_moderate", args=[thread.pk]), {"action": "lock"}
    )

    response = client_for(cast.student).post(
        reverse("forum:post_edit", args=[thread.posts.get().pk]),
        {"title": "Changed", "body": "Changed"},
    )

    assert response.status_code == 403
    assert thread.posts.get().body == "I tried 0.1 and it diverges."


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("forum:thread_moderate", {"action": "pin"}),
        ("forum:thread_moderate", {"action": "lock"}),
        ("forum:thread_moderate", {"action": "hide"}),
        ("forum:thread_move", {"category": ""}),
        ("forum:thread_split", {"numbers": ["2"], "title": "Split", "category": ""}),
    ],
)
def test_students_cannot_use_staff_thread_actions(client_for, cast, place, name, data):
    thread = start_thread(cast.student, place.category)
    reply_to(cast.other_student, thread)
    data = {**data, "category": place.category.pk} if "category" in data else data

    response = client_for(cast.student).post(reverse(name, args=[thread.pk]), data)

    assert response.status_code == 403
    thread.refresh_from_db()
    assert not (thread.is_pinned or thread.is_locked or thread.is_hidden)
    assert Thread.objects.count() == 1 and thread.post_count == 2


@pytest.mark.parametrize("action", ["hide", "mark_answer", "dismiss_flags"])
def test_students_cannot_use_staff_post_actions(client_for, cast, place, action):
    thread = start_thread(cast.student, place.category, question=place.question)
    post = reply_to(cast.other_student, thread)
    Flag.objects.create(post=post, user=cast.ta, reason="spam")

    response = client_for(cast.student).post(
        reverse("forum:post_moderate", args=[post.pk]), {"action": action}
    )

    assert response.status_code == 403
    post.refresh_from_db()
    assert not post.is_hidden and not post.contains_answer
    assert Flag.objects.get().status == "open"


def test_only_staff_see_the_moderation_queue(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    post = reply_to(cast.other_student, thread, "Buy cheap GPUs at example.com")
    client_for(cast.student).post(
        reverse("forum:post_flag", args=[post.pk]), {"reason": "spam", "comment": "advert"}
    )
    url = reverse("forum:moderation", args=[cast.course.slug])

    assert client_for(cast.student).get(url).status_code == 403
    queue = client_for(cast.ta).get(url)
    assert b"Buy cheap GPUs" in queue.content and b"advert" in queue.content

    client_for(cast.ta).post(
        reverse("forum:post_moderate", args=[post.pk]), {"action": "hide", "next": "queue"}
    )
    assert Flag.objects.get().status == "actioned"
    post.refresh_from_db()
    assert post.is_hidden


def test_only_the_thread_author_or_staff_accept_an_answer(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    answer = reply_to(cast.other_student, thread)

    refused = client_for(cast.other_student).post(reverse("forum:post_accept", args=[answer.pk]))
    accepted = client_for(cast.ta).post(reverse("forum:post_accept", args=[answer.pk]))

    assert refused.status_code == 403 and accepted.status_code == 302
    thread.refresh_from_db()
    assert thread.accepted_post == answer


def test_students_edit_only_their_own_posts(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    edit = reverse("forum:post_edit", args=[thread.posts.get().pk])

    assert (
        client_for(cast.other_student).post(edit, {"body": "vandalised", "title": "x"}).status_code
        == 403
    )
    assert (
        client_for(cast.ta).post(edit, {"body": "Tidied", "title": "Tidied title"}).status_code
        == 302
    )
    assert thread.posts.get().body == "Tidied"


def test_notifications_are_their_recipients_alone(client_for, cast, place):
    thread = start_thread(cast.student, place.category)
    reply_to(cast.other_student, thread)
    notification = Notification.objects.get(user=cast.student)

    response = client_for(cast.other_student).get(
        reverse("forum:notification_open", args=[notification.pk])
    )

    assert response.status_code == 404
    notification.refresh_from_db()
    assert notification.read_at is None


# --- A student's run ----------------------------------------------------------------------------


def test_asking_about_a_run_attaches_the_error_but_never_the_code_or_the_log(
    client_for, cast, place
):
    submission = failed_submission(
        cast.student, place.assignment, log=f"LOG_SECRET printed before\n{CRASH_LOG}"
    )
    client = client_for(cast.student)

    response = client.post(
        reverse("forum:ask_submission", args=[submission.pk]),
        {"title": "Shape error", "body": "Why?"},
    )

    thread = Thread.objects.get()
    assert response.status_code == 302
    for reader in (cast.other_student, cast.ta):
        page = client_for(reader).get(reverse("forum:thread_detail", args=[thread.pk])).content
        assert b"ValueError: matmul" in page
        assert b"SECRET_CODE" not in page and b"LOG_SECRET" not in page


def test_code_shown_to_staff_is_shown_to_staff_only(client_for, cast, place):
    submission = failed_submission(cast.student, place.assignment)
    client_for(cast.student).post(
        reverse("forum:ask_submission", args=[submission.pk]),
        {"title": "Shape error", "body": "Why?", "show_code_to_staff": "on"},
    )
    url = reverse("forum:thread_detail", args=[Thread.objects.get().pk])

    assert b"SECRET_CODE" not in client_for(cast.other_student).get(url).content
    assert b"SECRET_CODE" in client_for(cast.ta).get(url).content
    assert b"SECRET_CODE" in client_for(cast.instructor).get(url).content


def test_nobody_asks_about_someone_elses_run(client_for, cast, place):
    submission = failed_submission(cast.student, place.assignment)
    url = reverse("forum:ask_submission", args=[submission.pk])

    assert client_for(cast.other_student).get(url).status_code == 404
    assert (
        client_for(cast.other_student).post(url, {"title": "Mine now", "body": "x"}).status_code
        == 404
    )
    assert client_for(cast.ta).get(url).status_code == 403
    assert client_for(cast.outsider).get(url).status_code in (403, 404)
    assert not Thread.objects.exists()


def test_only_the_runs_student_gets_the_ask_button(client_for, cast, place):
    submission = failed_submission(cast.student, place.assignment)
    url = reverse("submission_detail", args=[submission.pk])
    ask = reverse("forum:ask_submission", args=[submission.pk]).encode()

    assert ask in client_for(cast.student).get(url).content
    assert ask not in client_for(cast.ta).get(url).content
