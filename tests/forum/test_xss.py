"""Nothing a user writes runs script in another user's browser: hostile post bodies, thread
titles, display names and flag comments, rendered on every forum page that shows them, parsed
the way a browser would (lxml) and checked for script, event handlers and script URLs."""

from __future__ import annotations

import re

import lxml.html
import pytest
from django.urls import reverse

from forum import services
from forum.access import thread_get_for_user
from forum.models import Flag, Thread
from tests.factories import EnrolmentFactory, UserFactory
from tests.forum.conftest import reply_to, start_thread
from tests.topdown.test_markdown import XSS_PAYLOADS as MARKDOWN_PAYLOADS

pytestmark = pytest.mark.django_db

FORUM_PAYLOADS = [
    '"><script>alert(1)</script>',
    "'><svg/onload=alert(1)>",
    "</textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "[x](&#106;avascript:alert(1))",
    "[x]( javascript:alert(1) )",
    '<a href="  javascript:alert(1)">x</a>',
    "<scr<script>ipt>alert(1)</script>",
    "@<img src=x onerror=alert(1)>",
    "@student<script>alert(1)</script>",
    '"onmouseover="alert(1)',
    "' onfocus='alert(1)' autofocus='",
    "<input onfocus=alert(1) autofocus>",
    "<body onload=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<img src=`x` onerror=alert(1)>",
    "\x02<script>alert(1)</script>\x03 alert",
    "<svg><a xlink:href='javascript:alert(1)'><text>x</text></a></svg>",
    "{{ request.user }}{% csrf_token %}<script>alert(1)</script>",
    "> quoted <script>alert(1)</script>\n>\n> [x](javascript:alert(1))",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
]
PAYLOADS = MARKDOWN_PAYLOADS + FORUM_PAYLOADS

URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster", "srcset"}
BAD_SCHEMES = ("javascript:", "vbscript:", "data:")
NEVER = {"iframe", "object", "embed", "base", "frame", "frameset", "applet", "style", "link"}


def test_the_battery_is_big_enough():
    assert len(set(PAYLOADS)) >= 30


def assert_inert(content: bytes, where: str) -> None:
    document = lxml.html.document_fromstring(content)
    for element in document.iter():
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions
        tag = element.tag.lower().rsplit("}", 1)[-1]
        in_head = any(a.tag == "head" for a in element.iterancestors())
        if tag == "script":
            assert element.get("src", "").startswith("/static/"), f"inline script in {where}"
            assert not (element.text or "").strip(), f"script text in {where}"
        if tag in ("svg", "math", "path", "text"):
            assert any(
                "nav-notifications" in (a.get("class") or "") for a in element.iterancestors()
            ), f"<{tag}> in {where}"
        if tag == "link" and in_head:
            continue
        assert tag not in NEVER, f"<{tag}> in {where}"
        if tag == "meta":
            assert element.get("http-equiv") is None, f"meta refresh in {where}"
        for name, value in element.attrib.items():
            name = name.lower()
            assert not name.startswith("on"), f"{name}= on <{tag}> in {where}"
            assert name != "style", f"style= on <{tag}> in {where}"
            if name in URL_ATTRIBUTES or name.endswith("href"):
                url = re.sub(r"[\s\x00-\x1f]", "", value).lower()
                assert not url.startswith(BAD_SCHEMES), f"{name}={value!r} in {where}"


@pytest.fixture
def hostile(cast, place):
    """For each payload: an author named with it, a thread titled with it, posts made of it, a
    mention, an edit, a flag with it as the comment."""
    threads = []
    for index, payload in enumerate(PAYLOADS):
        author = UserFactory(username=f"hostile{index}", display_name=payload[:80])
        EnrolmentFactory(user=author, course=cast.course)
        thread = start_thread(
            author,
            place.category,
            title=f"{index} {payload}"[:200],
            body=payload,
            question=place.question if index % 2 else None,
        )
        reply = reply_to(cast.other_student, thread, f"@hostile{index} {payload}")
        services.post_edit(
            editor=author,
            thread_access=thread_get_for_user(user=author, thread_id=thread.pk),
            post=thread.posts.get(number=1),
            body=f"{payload}\n\nedited {payload}",
            title=f"{payload} edited"[:200],
        )
        reply_to(author, thread, f"> {payload}\n\nalert {payload}")
        Flag.objects.create(post=reply, user=author, reason="other", comment=payload)
        threads.append(thread)
    # Notifications name the hostile authors to the student.
    reply_to(cast.student, threads[0], " ".join(f"@hostile{i}" for i in range(10)))
    return threads


def pages(cast, place, threads: list[Thread]) -> list[str]:
    urls = [
        reverse("forum:index", args=[cast.course.slug]),
        reverse("forum:category_chapter", args=[cast.course.slug, place.chapter.slug]),
        reverse("forum:category_chapter", args=[cast.course.slug, place.chapter.slug]) + "?page=2",
        reverse("forum:anchor_detail", args=[cast.course.slug, "question", place.question.pk]),
        reverse("forum:search", args=[cast.course.slug]) + "?q=alert",
        reverse("forum:search", args=[cast.course.slug]) + "?q=script+img",
        reverse("forum:notifications"),
    ]
    for thread in threads:
        first = thread.posts.get(number=1)
        urls += [
            reverse("forum:thread_detail", args=[thread.pk]),
            reverse("forum:post_history", args=[first.pk]),
            reverse("forum:thread_reply", args=[thread.pk]) + f"?quote={first.pk}",
            reverse("forum:post_edit", args=[first.pk]),
        ]
    return urls


def test_hostile_text_renders_inert_for_students(client_for, cast, place, hostile):
    client = client_for(cast.student)
    for url in pages(cast, place, hostile):
        if "/edit/" in url:
            continue  # students may not edit others' posts
        response = client.get(url)
        assert response.status_code == 200, url
        assert_inert(response.content, url)


def test_hostile_text_renders_inert_for_staff(client_for, cast, place, hostile):
    client = client_for(cast.instructor)
    urls = [*pages(cast, place, hostile), reverse("forum:moderation", args=[cast.course.slug])]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_inert(response.content, url)


def test_hostile_text_is_still_there_to_read(client_for, cast, place, hostile):
    # Sanitising must not eat what people wrote: the payload shows as text.
    page = client_for(cast.student).get(reverse("forum:thread_detail", args=[hostile[0].pk]))

    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page.content


def test_the_checker_catches_what_it_looks_for():
    # A test that cannot fail is a defect: the checker must reject each kind of live markup.
    for live in (
        b"<p><script>alert(1)</script></p>",
        b'<img src="x" onerror="alert(1)">',
        b'<a href=" javascript:alert(1)">x</a>',
        b"<iframe src=https://evil.example></iframe>",
        b'<p style="position:fixed">x</p>',
        b"<svg onload=alert(1)></svg>",
    ):
        with pytest.raises(AssertionError):
            assert_inert(b"<html><body>" + live + b"</body></html>", "sample")
