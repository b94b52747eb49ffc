from __future__ import annotations

import uuid
from html.parser import HTMLParser

import pytest

from topdown import markdown
from topdown.markdown import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, render_markdown

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox(1))",
    "![x](javascript:alert(1))",
    '<iframe src="https://evil.example"></iframe>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<p style="position:fixed;top:0">overlay</p>',
    "<form action=/logout method=post><button>x</button></form>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<object data="javascript:alert(1)"></object>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    '<base href="https://evil.example/">',
    "<link rel=stylesheet href=https://evil.example/x.css>",
    '[x](https://example.com "t" onmouseover=alert(1))',
    "```html\n<script>alert(1)</script>\n```",
    "`<script>alert(1)</script>`",
    "$<img src=x onerror=alert(1)>$",
    "$$</div><script>alert(1)</script>$$",
    "<details open ontoggle=alert(1)>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
]

SAFE_SCHEMES = ("http:", "https:", "mailto:")


class ElementCollector(HTMLParser):
    """Every element and attribute the browser would build from the HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, attrs))


def elements_of(html: str):
    collector = ElementCollector()
    collector.feed(html)
    collector.close()
    return collector.elements


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_hostile_markdown_renders_inert(payload):
    html = render_markdown(payload)
    for tag, attrs in elements_of(html):
        assert tag in ALLOWED_TAGS, f"<{tag}> survived in {html!r}"
        for name, value in attrs:
            assert name in ALLOWED_ATTRIBUTES.get(tag, set()), f"{name}= on <{tag}> in {html!r}"
            if name in ("href", "src"):
                url = (value or "").strip().lower()
                assert ":" not in url.split("/")[0] or url.startswith(SAFE_SCHEMES), url


def test_the_inert_payloads_are_still_visible_as_text():
    # Sanitising must not silently eat what the author wrote.
    assert "&lt;script&gt;" in render_markdown("<script>alert(1)</script>")


def test_links_open_safely():
    html = render_markdown("[docs](https://pytorch.org)")
    assert 'href="https://pytorch.org"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_fenced_code_is_highlighted_on_the_server():
    html = render_markdown("```python\nimport torch\n```")
    assert '<pre class="highlight">' in html
    assert '<span class="kn">import</span>' in html


def test_unknown_code_language_is_escaped_not_dropped():
    html = render_markdown("```nosuchlang\na < b\n```")
    assert "a &lt; b" in html


def test_maths_is_left_for_katex():
    html = render_markdown("Loss $L = -\\log p$ and\n\n$$\\sum_i x_i$$")
    assert '<span class="math inline">L = -\\log p</span>' in html
    assert '<div class="math block">' in html


def test_dollar_amounts_are_not_maths():
    assert "math" not in render_markdown("It costs $5 and $10.")


def test_tables_and_emphasis():
    html = render_markdown("| a | b |\n|---|---|\n| *1* | 2 |")
    assert "<table>" in html and "<em>1</em>" in html


def test_empty_text_renders_nothing():
    assert render_markdown("") == ""


def test_long_code_is_highlighted_once_and_kept_by_its_content(monkeypatch):
    calls = []
    highlight = markdown._highlight
    monkeypatch.setattr(
        markdown, "_highlight", lambda *args: calls.append(args[0]) or highlight(*args)
    )
    # New code on every run: the shared cache outlives the test.
    code = f"run = {uuid.uuid4().hex!r}\n" + "total += 1  # <step>\n" * 200
    assert len(code) > markdown.SHARED_FROM_CHARS

    first = markdown.highlight_code(code)
    again = markdown.highlight_code(code)
    other = markdown.highlight_code(code + "print(total)\n")

    assert first == again == highlight(code, "python", "")
    assert "# &lt;step&gt;" in first
    assert "print" in other and "print" not in first
    assert len(calls) == 2


def test_short_code_is_highlighted_once_per_process(monkeypatch):
    markdown._highlight_snippet.cache_clear()
    calls = []
    highlight = markdown._highlight
    monkeypatch.setattr(
        markdown, "_highlight", lambda *args: calls.append(args[0]) or highlight(*args)
    )

    assert markdown.highlight_code("x = 1 < 2\n") == markdown.highlight_code("x = 1 < 2\n")
    assert "&lt;" in markdown.highlight_code("x = 1 < 2\n")
    assert len(calls) == 1
