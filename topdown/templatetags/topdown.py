from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from topdown.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str | None) -> SafeString:
    # render_markdown sanitises with an allowlist, so its output is safe to mark as such.
    return mark_safe(render_markdown(text or ""))  # noqa: S308


@register.filter
def percent(value: float | None) -> int:
    return round((value or 0) * 100)
