"""Template fragments rendered once per process for each distinct content.

A list page draws the same rows request after request, and fifty rows through the template
engine cost more than the rest of the page. A fragment's HTML depends on its context alone (with
the active language, time zone and URL prefix), so each process keeps the last few thousand it
rendered, keyed by exactly those. Nothing needs invalidating: changed data is a different key.

The rules for a fragment template and its context:

- Context values are hashable and compare by value: frozen dataclasses, tuples, strings, numbers,
  datetimes. Never model instances, which compare by primary key alone.
- The fragment is rendered without the request: no ``request`` or ``user``, no context
  processors. Pass what it shows.
- A form in a fragment writes ``{{ csrf_slot }}`` where ``{% csrf_token %}`` would be (the tag
  would be empty), and the view passes the joined fragments through ``fill_csrf_slots``, which
  puts the request's token there. The slot is an HTML comment with a random part drawn at
  start-up, which neither escaped text nor sanitised markdown (comments stripped) can contain.

``render_form`` does the same for a form whose HTML follows from its class and submitted data
alone (a list's filters, read from the query string): Django draws each widget through templates.
``render_memoised`` is for a costly context (charts): it is built only when the caller's key,
which must determine it, has not been rendered yet.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from django import forms
from django.contrib.humanize.templatetags.humanize import NaturalTimeFormatter, naturaltime
from django.core.signals import setting_changed
from django.http import HttpRequest, QueryDict
from django.template.backends.utils import csrf_input
from django.template.loader import render_to_string
from django.urls import get_script_prefix
from django.utils import timezone, translation
from django.utils.autoreload import file_changed
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince, timeuntil
from django.utils.timezone import is_aware

MAX_FRAGMENTS = 4096  # a few MB per process at most
MAX_FORMS = 256
MAX_MEMOISED = 64  # larger fragments (charts): tens of KB each

CSRF_SLOT = mark_safe(f"<!--csrf-{secrets.token_hex(16)}-->")  # noqa: S308 - our own literal

Setting = tuple[str | None, str, str]
FormData = tuple[tuple[str, tuple[str, ...]], ...]


def _setting() -> Setting:
    """What a template's output depends on besides its context."""
    return (
        translation.get_language(),
        timezone.get_current_timezone_name(),
        get_script_prefix(),
    )


@lru_cache(maxsize=MAX_FRAGMENTS)
def _render(template_name: str, context: tuple[tuple[str, Hashable], ...], setting: Setting) -> str:
    return render_to_string(template_name, {**dict(context), "csrf_slot": CSRF_SLOT})


def render_fragments(template_name: str, contexts: Iterable[Mapping[str, Hashable]]) -> SafeString:
    """``template_name`` rendered with each context in turn, joined: from memory when this
    process has rendered the same context before."""
    return Renderer().fragments(template_name, contexts)


def render_each(template_name: str, contexts: Iterable[Mapping[str, Hashable]]) -> list[str]:
    """``render_fragments`` without the joining: each context's HTML (safe: the output of an
    autoescaping template), for a caller that puts something between them."""
    return Renderer().each(template_name, contexts)


def render_fragment(template_name: str, **context: Hashable) -> SafeString:
    return render_fragments(template_name, [context])


class Renderer:
    """``render_fragment`` and ``render_fragments`` for the parts of one response: what their
    HTML depends on besides the context (language, time zone, URL prefix) is read once, where
    each of those calls reads it again (three context-local lookups, about 25 µs). Make one per
    response, after anything that changes the language or time zone."""

    def __init__(self) -> None:
        self.setting = _setting()

    def each(self, template_name: str, contexts: Iterable[Mapping[str, Hashable]]) -> list[str]:
        setting = self.setting
        return [_render(template_name, tuple(context.items()), setting) for context in contexts]

    def fragments(
        self, template_name: str, contexts: Iterable[Mapping[str, Hashable]]
    ) -> SafeString:
        # Each part is the output of an autoescaping template.
        return mark_safe("".join(self.each(template_name, contexts)))  # noqa: S308

    def fragment(self, template_name: str, **context: Hashable) -> SafeString:
        return self.fragments(template_name, [context])


def fill_csrf_slots(html: SafeString, request: HttpRequest) -> SafeString:
    """``html`` with the request's CSRF token field in each form's ``{{ csrf_slot }}``."""
    if CSRF_SLOT not in html:
        return html
    # Both parts are safe: fragments from autoescaping templates, and Django's own hidden field.
    return mark_safe(html.replace(CSRF_SLOT, str(csrf_input(request))))  # noqa: S308


@lru_cache(maxsize=MAX_FORMS)
def _render_form(
    template_name: str, form_class: type[forms.Form], data: FormData | None, setting: Setting
) -> str:
    bound = None
    if data is not None:
        bound = QueryDict(mutable=True)
        for key, values in data:
            bound.setlist(key, list(values))
    return render_to_string(template_name, {"form": form_class(bound)})


def render_form(
    template_name: str, form_class: type[forms.Form], data: QueryDict | None
) -> SafeString:
    """``form_class(data)`` rendered with ``template_name`` (as ``form``): from memory when this
    process has rendered the same form with the same data. Only for forms built from their data
    alone: no initial values, instance, user or choices read when the form is made."""
    key = None if data is None else tuple(sorted((k, tuple(v)) for k, v in data.lists()))
    # Rendered by an autoescaping template.
    return mark_safe(_render_form(template_name, form_class, key, _setting()))  # noqa: S308


_memoised: OrderedDict[tuple[str, Hashable, Setting], str] = OrderedDict()
_memoised_lock = threading.Lock()


def render_memoised(
    template_name: str, *, key: Hashable, context: Callable[[], Mapping[str, Any]]
) -> SafeString:
    """``template_name`` rendered with ``context()``: from memory when this process has rendered
    it for the same ``key``. The key must determine the context: derive it from the data shown
    (a digest of it), never from an id alone."""
    memo_key = (template_name, key, _setting())
    with _memoised_lock:
        html = _memoised.get(memo_key)
        if html is not None:
            _memoised.move_to_end(memo_key)
    if html is None:
        html = render_to_string(template_name, dict(context()))
        with _memoised_lock:
            _memoised[memo_key] = html
            while len(_memoised) > MAX_MEMOISED:
                _memoised.popitem(last=False)
    # Rendered by an autoescaping template.
    return mark_safe(html)  # noqa: S308


@lru_cache(maxsize=MAX_FRAGMENTS)
def _natural_short(kind: str, count: int, language: str | None) -> str:
    return str(NaturalTimeFormatter.time_strings[kind] % {"count": count})


@lru_cache(maxsize=MAX_FRAGMENTS)
def _natural_long(value: datetime, past: bool, hours: int, language: str | None) -> str:
    # Any moment of the hour gives the same text (see natural_time): its middle stands for all.
    shift = timedelta(hours=hours, minutes=30)
    if past:
        delta = timesince(value, value + shift, time_strings=NaturalTimeFormatter.past_substrings)
        return str(NaturalTimeFormatter.time_strings["past-day"] % {"delta": delta})
    delta = timeuntil(value, value - shift, time_strings=NaturalTimeFormatter.future_substrings)
    return str(NaturalTimeFormatter.time_strings["future-day"] % {"delta": delta})


def natural_time(value: datetime) -> str:
    """What ``naturaltime(value)`` says ("3 minutes ago"), for an aware datetime, from memory:
    a page of twenty posts or thirty threads spent a tenth of its time working it out.

    Within a day the text is a count of seconds, minutes or hours, kept per count. From a day
    on it names at most days and hours (or coarser units), and it changes only when a whole
    number of hours has gone by since ``value`` (calendar months included: a month after a
    time of day is at the same time of day); the text for an hour is worked out once, from
    the middle of that hour, and kept per value."""
    if not is_aware(value):
        return str(naturaltime(value))
    now = datetime.now(UTC)
    past = value < now
    delta = now - value if past else value - now
    language = translation.get_language()
    if delta.days != 0:
        return _natural_long(value, past, int(delta.total_seconds() // 3600), language)
    direction = "past" if past else "future"
    if delta.seconds == 0:
        return _natural_short("now", 0, language)
    if delta.seconds < 60:
        return _natural_short(f"{direction}-second", delta.seconds, language)
    if delta.seconds // 60 < 60:
        return _natural_short(f"{direction}-minute", delta.seconds // 60, language)
    return _natural_short(f"{direction}-hour", delta.seconds // 3600, language)


def _forget(**kwargs: Any) -> None:
    # The development server reloads an edited template without restarting the process, and
    # tests change settings (formats, templates) within one.
    _render.cache_clear()
    _render_form.cache_clear()
    _natural_short.cache_clear()
    _natural_long.cache_clear()
    with _memoised_lock:
        _memoised.clear()


file_changed.connect(_forget, dispatch_uid="topdown.fragments.forget")
setting_changed.connect(_forget, dispatch_uid="topdown.fragments.forget")
