"""Limits on what people may post: size for everyone, rate and links for new accounts.

Staff are never limited: they answer in bursts when a deadline nears.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.conf import settings

from accounts.models import User
from forum.models import Post
from forum.rendering import external_link_count

TITLE_MIN_CHARS = 3
TITLE_MAX_CHARS = 200
MENTIONS_MAX = 10
# Control characters other than tab and newlines: invisible, and search marks matches with some.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class PostRefused(Exception):
    """A post the rules do not allow; the message says why, in words for its author."""


def body_normalise(body: str) -> str:
    return _CONTROL.sub("", body.replace("\r\n", "\n"))


def account_is_new(user: User, *, now: datetime) -> bool:
    return now - user.date_joined < timedelta(days=settings.FORUM_NEW_ACCOUNT_DAYS)


def body_check(body: str, *, user: User, is_staff: bool, now: datetime) -> None:
    """Raise ``PostRefused`` unless ``body`` may be posted by ``user`` (size and links)."""
    if not body.strip():
        raise PostRefused("Write something first.")
    cap = settings.FORUM_POST_MAX_CHARS
    if len(body) > cap:
        raise PostRefused(f"A post may be at most {cap:,} characters long (this is {len(body):,}).")
    if is_staff or not account_is_new(user, now=now):
        return
    allowed = settings.FORUM_NEW_ACCOUNT_LINKS_PER_POST
    links = external_link_count(body)
    if links > allowed:
        raise PostRefused(
            f"New accounts may include at most {allowed} link{'s' if allowed != 1 else ''} "
            f"per post (this one has {links}). The limit lifts after "
            f"{settings.FORUM_NEW_ACCOUNT_DAYS} days."
        )


def rate_check(*, user: User, is_staff: bool, now: datetime) -> None:
    """Raise ``PostRefused`` when ``user`` has posted too often in the last minute."""
    if is_staff:
        return
    new = account_is_new(user, now=now)
    limit = settings.FORUM_NEW_ACCOUNT_POSTS_PER_MINUTE if new else settings.FORUM_POSTS_PER_MINUTE
    recent = Post.objects.filter(author=user, created_at__gt=now - timedelta(minutes=1)).count()
    if recent >= limit:
        who = "New accounts" if new else "You"
        raise PostRefused(
            f"{who} may post at most {limit} time{'s' if limit != 1 else ''} a minute. "
            "Wait a moment and post again: your text is still here."
        )


def title_check(title: str) -> str:
    title = " ".join(_CONTROL.sub("", title).split())
    if len(title) < TITLE_MIN_CHARS:
        raise PostRefused(f"Give the thread a title of at least {TITLE_MIN_CHARS} characters.")
    if len(title) > TITLE_MAX_CHARS:
        raise PostRefused(f"A title may be at most {TITLE_MAX_CHARS} characters long.")
    return title
