"""In-site notifications, and the emails some people ask for (each, or a daily digest).

One notification per person per post, the most specific kind winning: a mention, else a reply in
your thread, else activity where you watch. Only the course's members hear of a post, and of a
hidden thread only its staff. Emails carry who did what where and a link, never a post's text:
the text may hold an answer the reader must not see yet, and the page decides that.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from courses.models import STAFF_ROLES, Enrolment
from forum.models import Notification, NotificationPreference, Post, Thread, Watch

DIGEST_EVERY = timedelta(hours=23)  # a day, give or take when beat's hourly run falls
DIGEST_MAX_ITEMS = 50


def _recipients_in_course(thread: Thread, user_ids: set[int]) -> set[int]:
    members = Enrolment.objects.filter(course_id=thread.course_id, user_id__in=user_ids)
    if thread.is_hidden:
        members = members.filter(role__in=STAFF_ROLES)
    return set(members.values_list("user_id", flat=True))


def _deliver(notifications: list[Notification]) -> list[Notification]:
    if not notifications:
        return []
    created = Notification.objects.bulk_create(notifications)
    wants_email = set(
        NotificationPreference.objects.filter(
            user_id__in={n.user_id for n in created}, email_each=True
        ).values_list("user_id", flat=True)
    )
    if wants_email:
        from forum.tasks import notification_email_send_task

        for notification in created:
            if notification.user_id in wants_email:
                transaction.on_commit(partial(notification_email_send_task.delay, notification.pk))
    return created


def notify_post(
    *, post: Post, thread: Thread, mentioned: list[User], mentions_only: bool = False
) -> list[Notification]:
    """Tell the people mentioned, the thread's author and the watchers about a new post."""
    author_id = post.author_id
    kinds: dict[int, str] = {}
    for user in mentioned:
        kinds.setdefault(user.pk, Notification.Kind.MENTION)
    if not mentions_only:
        if post.number > 1 and thread.author_id:
            kinds.setdefault(thread.author_id, Notification.Kind.REPLY)
        watchers = Watch.objects.filter(
            Q(thread_id=thread.pk) | Q(category_id=thread.category_id)
        ).values_list("user_id", flat=True)
        for user_id in watchers:
            kinds.setdefault(user_id, Notification.Kind.WATCHED)
    kinds.pop(author_id, None)  # type: ignore[arg-type]
    if not kinds:
        return []
    allowed = _recipients_in_course(thread, set(kinds))
    return _deliver(
        [
            Notification(
                user_id=user_id,
                kind=kind,
                thread=thread,
                post=post,
                actor_id=author_id,
                created_at=post.created_at,
            )
            for user_id, kind in kinds.items()
            if user_id in allowed
        ]
    )


def notify_accepted(*, post: Post, thread: Thread, actor: User) -> list[Notification]:
    if post.author_id is None or not _recipients_in_course(thread, {post.author_id}):
        return []
    return _deliver(
        [
            Notification(
                user_id=post.author_id,
                kind=Notification.Kind.ACCEPTED,
                thread=thread,
                post=post,
                actor=actor,
            )
        ]
    )


def notification_read(*, notification: Notification) -> None:
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])


def notifications_read_all(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )


def notifications_read_for_thread(*, user: User, thread: Thread, up_to: int) -> int:
    """Reading a thread's page reads the notifications about the posts on it."""
    return Notification.objects.filter(
        user=user, thread=thread, read_at__isnull=True, post__number__lte=up_to
    ).update(read_at=timezone.now())


def preferences_for(*, user: User) -> NotificationPreference:
    preference, _ = NotificationPreference.objects.get_or_create(user=user)
    return preference


def preferences_update(
    *, user: User, email_each: bool, email_digest: bool
) -> NotificationPreference:
    preference = preferences_for(user=user)
    preference.email_each, preference.email_digest = email_each, email_digest
    preference.save(update_fields=["email_each", "email_digest", "updated_at"])
    return preference


# --- Email --------------------------------------------------------------------------------------


def _absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def _link(notification: Notification) -> str:
    return _absolute(reverse("forum:notification_open", args=[notification.pk]))


def notification_email_send(*, notification_id: int, now: datetime | None = None) -> bool:
    """Email one notification to its recipient, once: the row is claimed before sending and
    released again if sending fails (so a retry sends it). Read or emailed ones are skipped."""
    now = now or timezone.now()
    claimed = Notification.objects.filter(
        pk=notification_id, emailed_at__isnull=True, read_at__isnull=True
    ).update(emailed_at=now)
    if not claimed:
        return False
    notification = Notification.objects.select_related("user", "actor", "thread").get(
        pk=notification_id
    )
    user = notification.user
    wanted = NotificationPreference.objects.filter(user=user, email_each=True).exists()
    if not wanted or not user.email:
        return False
    context = {
        "user": user,
        "notification": notification,
        "link": _link(notification),
        "preferences": _absolute(reverse("forum:preferences")),
    }
    try:
        send_mail(
            subject=f"[Topdown] {notification.actor or 'Someone'} "
            f"{notification.get_kind_display()}: {notification.thread.title}"[:200],
            message=render_to_string("forum/email/notification.txt", context),
            from_email=None,
            recipient_list=[user.email],
        )
    except Exception:
        Notification.objects.filter(pk=notification_id).update(emailed_at=None)
        raise
    return True


def digests_due(*, now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return list(
        NotificationPreference.objects.filter(email_digest=True)
        .filter(Q(last_digest_at__isnull=True) | Q(last_digest_at__lte=now - DIGEST_EVERY))
        .values_list("user_id", flat=True)
    )


def digest_send(*, user_id: int, now: datetime | None = None) -> int:
    """The daily digest of ``user_id``'s unread notifications since the last one. Claimed with a
    conditional update, so two runs at once send it once. Returns the notifications in it."""
    now = now or timezone.now()
    preference = (
        NotificationPreference.objects.select_related("user")
        .filter(user_id=user_id, email_digest=True)
        .first()
    )
    if preference is None:
        return 0
    previous = preference.last_digest_at
    if previous is not None and previous > now - DIGEST_EVERY:
        return 0
    claimed = NotificationPreference.objects.filter(
        pk=preference.pk, last_digest_at=previous
    ).update(last_digest_at=now)
    if not claimed:
        return 0
    since = previous or now - timedelta(days=1)
    unread = list(
        Notification.objects.filter(
            user_id=user_id, read_at__isnull=True, created_at__gt=since, created_at__lte=now
        )
        .select_related("actor", "thread")
        .order_by("created_at")[:DIGEST_MAX_ITEMS]
    )
    user = preference.user
    if not unread or not user.email:
        return 0
    context = {
        "user": user,
        "items": [(n, _link(n)) for n in unread],
        "preferences": _absolute(reverse("forum:preferences")),
    }
    try:
        send_mail(
            subject=f"[Topdown] {len(unread)} forum notification{'s' if len(unread) != 1 else ''}",
            message=render_to_string("forum/email/digest.txt", context),
            from_email=None,
            recipient_list=[user.email],
        )
    except Exception:
        NotificationPreference.objects.filter(pk=preference.pk).update(last_digest_at=previous)
        raise
    return len(unread)


def digests_send(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    return sum(1 for user_id in digests_due(now=now) if digest_send(user_id=user_id, now=now))
