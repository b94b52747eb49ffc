"""``{% url %}`` as a builtin that remembers what it reversed (``topdown/templatetags``)."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.urls import NoReverseMatch, reverse, set_script_prefix

from tests.factories import UserFactory
from topdown.templatetags.cached_url import CachedURLNode, _reverse


def render(source: str, **context: object) -> str:
    return Template(source).render(Context(context))


@pytest.fixture(autouse=True)
def _fresh():
    _reverse.cache_clear()
    yield
    set_script_prefix("/")


def test_every_template_gets_the_cached_tag_without_loading_anything():
    assert isinstance(Template("{% url 'home' %}").nodelist[0], CachedURLNode)


def test_it_reverses_as_djangos_tag_does_and_remembers_plain_arguments():
    source = "{% url 'chapter_detail' course chapter %}|{% url 'chapter_detail' course_slug=course chapter_slug=chapter %}"
    expected = reverse("chapter_detail", args=["deep-learning", "first-model"])

    first = render(source, course="deep-learning", chapter="first-model")
    second = render(source, course="deep-learning", chapter="first-model")

    assert first == second == f"{expected}|{expected}"
    info = _reverse.cache_info()
    assert (info.misses, info.hits) == (2, 2)


def test_it_escapes_and_supports_as_var():
    assert render("{% url 'profile' as link %}[{{ link }}]") == f"[{reverse('profile')}]"
    assert render("{% url 'no-such-view' as link %}[{{ link }}]") == "[]"
    with pytest.raises(NoReverseMatch):
        render("{% url 'no-such-view' %}")


def test_a_script_prefix_is_part_of_the_key():
    plain = render("{% url 'home' %}")
    set_script_prefix("/topdown/")
    assert render("{% url 'home' %}") == "/topdown" + plain


@pytest.mark.django_db
def test_other_arguments_are_reversed_every_time():
    user = UserFactory(display_name="ada")
    # A model instance prints however its class says; only plain values are remembered.
    rendered = render(
        "{% url 'forum:notifications' %}{% url 'chapter_detail' user 'x' %}", user=user
    )
    assert rendered.endswith(reverse("chapter_detail", args=[str(user), "x"]))
    assert _reverse.cache_info().currsize == 1
