"""The layout's header is a per-process fragment: it must still be each viewer's own."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def header(response) -> str:
    html = response.content.decode()
    return html[html.index('<header class="site-header">') : html.index("</header>")]


def test_each_viewer_sees_their_own_name_and_a_log_out_form_with_their_token(cast):
    cast.student.display_name = "Ada <script>alert(1)</script>"
    cast.student.save()
    url = reverse("course_detail", args=[cast.course.slug])
    seen = {}
    for user in (cast.student, cast.ta, cast.student):
        client = Client()
        client.force_login(user)
        response = client.get(url)
        part = header(response)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', part)
        assert token, part
        assert "<!--csrf-" not in part
        seen.setdefault(user.username, []).append(part.replace(token.group(1), "TOKEN"))
        # The token is this request's: logging out with it works.
        out = client.post(reverse("logout"), {"csrfmiddlewaretoken": token.group(1)})
        assert out.status_code == 302
    student, ta = seen["student"][0], seen["ta"][0]
    assert "Ada &lt;script&gt;alert(1)&lt;/script&gt;" in student and "<script>alert" not in student
    assert cast.ta.public_name in ta and "Ada" not in ta
    assert seen["student"][0] == seen["student"][1]


def test_the_current_page_is_marked_and_visitors_come_back_after_logging_in(cast, client):
    course = reverse("course_detail", args=[cast.course.slug])
    anonymous = header(client.get(course))
    assert f'href="{reverse("login")}?next={course}"' in anonymous
    assert "Log out" not in anonymous
    assert f'href="{reverse("login")}"' in header(client.get(reverse("login")))

    client.force_login(cast.student)
    home = header(client.get(reverse("home")))
    assert f'<a href="{reverse("home")}" aria-current="page">Courses</a>' in home
    assert 'aria-current="page"' not in header(client.get(course))
    assert f'href="{reverse("profile")}" aria-current="page"' in header(
        client.get(reverse("profile"))
    )
