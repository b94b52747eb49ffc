"""The one way user and author text becomes HTML on Topdown.

CommonMark (plus tables and strikethrough), fenced code highlighted server-side with Pygments,
``$...$`` and ``$$...$$`` kept as ``.math`` elements for KaTeX in the browser, and everything
passed through nh3 with an allowlist: no scripts, event handlers, styles or ``javascript:`` URLs.
"""

from __future__ import annotations

import hashlib
import html
from functools import lru_cache

import nh3
import pygments
from django.core.cache import cache
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_FORMATTER = HtmlFormatter(nowrap=True)

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong", "sub",
    "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "pre": {"class"},
    "div": {"class"},
    "span": {"class"},
    "ol": {"start"},
    "td": {"align"},
    "th": {"align"},
}
URL_SCHEMES = {"http", "https", "mailto"}


def _highlight(code: str, lang: str, _attrs: str) -> str:
    try:
        lexer = get_lexer_by_name(lang.strip().split()[0]) if lang.strip() else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return f'<pre class="highlight"><code>{html.escape(code)}</code></pre>'
    body = highlight(code, lexer, _FORMATTER)
    return f'<pre class="highlight"><code class="language-{html.escape(lang)}">{body}</code></pre>'


# Pygments takes milliseconds for a screenful of code (80 ms for 500 lines), so highlighted code
# is kept: short snippets in each process, longer code in the shared cache under its SHA-256.
SHARED_FROM_CHARS = 2000
HIGHLIGHT_CACHE_SECONDS = 24 * 60 * 60


def highlight_code(code: str, lang: str = "python") -> str:
    """A block of code as escaped, highlighted HTML (``<pre class="highlight">``).

    Pure and cached: the same code always gives the same HTML.
    """
    if len(code) < SHARED_FROM_CHARS:
        return _highlight_snippet(code, lang)
    digest = hashlib.sha256(f"{lang}\n{code}".encode()).hexdigest()
    key = f"topdown:highlight:{pygments.__version__}:{digest}"
    highlighted: str | None = cache.get(key)
    if highlighted is None:
        highlighted = _highlight(code, lang, "")
        cache.set(key, highlighted, timeout=HIGHLIGHT_CACHE_SECONDS)
    return highlighted


@lru_cache(maxsize=512)
def _highlight_snippet(code: str, lang: str) -> str:
    return _highlight(code, lang, "")


def _build_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"highlight": _highlight, "html": False})
    md.enable(["table", "strikethrough"])
    # "$5 and $10" stays prose: the opening $ may not be followed by a space, nor the closing
    # one by a digit.
    md.use(dollarmath_plugin, allow_space=False, allow_digits=False, double_inline=True)
    return md


_PARSER = _build_parser()


@lru_cache(maxsize=2048)
def render_markdown(text: str) -> str:
    """Render markdown to safe HTML. Pure and cached: the same text always gives the same HTML."""
    if not text:
        return ""
    return _sanitise(_PARSER.render(text))


def _sanitise(raw: str) -> str:
    return nh3.clean(
        raw,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


@lru_cache(maxsize=2048)
def render_markdown_inline(text: str) -> str:
    """Render one line of markdown (emphasis, code, links, maths) without a paragraph wrapper."""
    if not text:
        return ""
    return _sanitise(_PARSER.renderInline(text))
