from __future__ import annotations

from functools import lru_cache

from django import template
from django.core.signals import setting_changed
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from topdown import fragments
from topdown.markdown import highlight_code, render_markdown, render_markdown_inline
from topdown.numbers import format_number

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str | None) -> SafeString:
    # render_markdown sanitises with an allowlist, so its output is safe to mark as such.
    return mark_safe(render_markdown(text or ""))  # noqa: S308


@register.filter(name="python_code")
def python_code_filter(text: str | None) -> SafeString:
    """Python source as a highlighted block; Pygments escapes every character of it."""
    return mark_safe(highlight_code(text or "", "python"))  # noqa: S308


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


@register.simple_tag
def progress_bar(percent: int | None, label: str, subject: str = "", size: str = "") -> SafeString:
    """An accessible progress bar. A tag, not an include: list pages draw dozens of them."""
    value = max(0, min(100, int(percent or 0)))
    return format_html(
        '<div class="progress{}" role="progressbar" aria-label="{}" aria-valuemin="0" '
        'aria-valuemax="100" aria-valuenow="{}" aria-valuetext="{}%">'
        '<div class="progress-bar{}" style="width: {}%"></div></div>',
        f" progress-{size}" if size else "",
        f"{label} {subject}".strip(),
        value,
        value,
        " is-complete" if value >= 100 else "",
        value,
    )


@register.simple_tag
def asset(path: str) -> str:
    """``{% static path %}``, looked up once per process: the layout links the same files on
    every page, and each lookup in the manifest of hashed names costs a little."""
    return _asset_url(path)


@lru_cache(maxsize=256)
def _asset_url(path: str) -> str:
    return static(path)


def _forget_assets(*, setting: str, **kwargs: object) -> None:
    if setting in {"STORAGES", "STATIC_URL", "STATIC_ROOT", "STATICFILES_DIRS"}:
        _asset_url.cache_clear()


setting_changed.connect(_forget_assets, dispatch_uid="topdown.asset")


@register.simple_tag(takes_context=True)
def site_header(context: template.Context) -> SafeString:
    """The layout's header (site name, navigation, the viewer's name and log-out form): a
    fragment (``topdown.fragments``) per viewer name and page, as every page draws it."""
    request = context.get("request")
    user = context.get("user")
    match = getattr(request, "resolver_match", None)
    url_name = match.url_name if match else None
    signed_in = user is not None and user.is_authenticated
    # Logging in brings an anonymous visitor back to the page they were on.
    back = request.path if request and not signed_in and url_name != "login" else ""
    html = fragments.render_fragment(
        "includes/site_header.html",
        name=user.public_name if signed_in else None,
        url_name=url_name,
        next=back,
    )
    return fragments.fill_csrf_slots(html, request) if request is not None else html
