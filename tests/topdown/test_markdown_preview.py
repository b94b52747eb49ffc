from __future__ import annotations

import pytest
from django.urls import reverse

from topdown.markdown_views import PREVIEW_MAX_CHARS

pytestmark = pytest.mark.django_db


def test_preview_renders_markdown_like_the_published_page(client, cast):
    # Given a logged-in author
    client.force_login(cast.instructor)
    # When they preview markdown with code, maths and a script tag
    response = client.post(
        reverse("markdown_preview"),
        {"text": "# Title\n\n`x = 1` and $x^2$\n\n<script>alert(1)</script>"},
    )
    # Then they get the sanitised HTML
    assert response.status_code == 200
    html = response.json()["html"]
    assert "<h1>Title</h1>" in html
    assert "<code>x = 1</code>" in html
    assert 'class="math inline"' in html
    assert "<script" not in html


def test_preview_needs_a_login_and_a_post(client, cast):
    assert client.post(reverse("markdown_preview"), {"text": "hi"}).status_code == 302
    client.force_login(cast.student)
    assert client.get(reverse("markdown_preview")).status_code == 405


def test_preview_refuses_huge_text_with_a_clear_error(client, cast):
    client.force_login(cast.student)
    response = client.post(reverse("markdown_preview"), {"text": "a" * (PREVIEW_MAX_CHARS + 1)})
    assert response.status_code == 413
    assert "Too long to preview" in response.json()["error"]
