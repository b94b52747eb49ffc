from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from topdown.markdown import render_markdown, render_markdown_inline
from topdown.numbers import format_number

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str | None) -> SafeString:
    # render_markdown sanitises with an allowlist, so its output is safe to mark as such.
    return mark_safe(render_markdown(text or ""))  # noqa: S308


@register.filter
def percent(value: float | None) -> int:
    return round((value or 0) * 100)


@register.filter(name="markdown_inline")
def markdown_inline_filter(text: str | None) -> SafeString:
    """Markdown without the block wrapper, for labels and table cells."""
    return mark_safe(render_markdown_inline(text or ""))  # noqa: S308


@register.filter
def number(value: float | None) -> str:
    return "" if value is None else format_number(float(value))


@register.filter
def percent_precise(value: float | None) -> str:
    """A fraction as a percentage with as many decimals as it needs: 0.005 -> 0.5."""
    return format_number(round((value or 0) * 100, 6))
