"""Posts as HTML: ``topdown.markdown`` does the markdown and the sanitising; this adds @mentions.

Rendering happens once, when a post is written (``Post.body_html``), so a thread page costs no
markdown work. Mentions are found in the rendered text outside code and links, so ``@x`` in a
code block mentions nobody, and only known usernames become mentions.
"""

from __future__ import annotations

import re
from collections.abc import Collection

import nh3

from topdown.markdown import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, URL_SCHEMES, render_markdown

MENTION = re.compile(r"(?<![\w@.+-])@([A-Za-z0-9_.+-]{1,150})")
TAG = re.compile(r"(<[^>]*>)")
NO_MENTIONS_INSIDE = {"code", "pre", "a"}
# Anything that reaches another site: markdown links and images, autolinks, bare addresses.
EXTERNAL_LINK = re.compile(r"(?:https?|ftp)://|\bwww\.|mailto:", re.IGNORECASE)


def _username(match: str) -> str:
    # "@alice." at the end of a sentence mentions alice.
    return match.rstrip(".")


def _text_segments(html: str) -> list[tuple[str, bool]]:
    """``html`` cut into (piece, is_mentionable_text) in order."""
    pieces: list[tuple[str, bool]] = []
    depth = 0
    for piece in TAG.split(html):
        if not piece:
            continue
        if piece.startswith("<"):
            name = piece.strip("</>").split()[0].lower() if piece.strip("</>") else ""
            if name in NO_MENTIONS_INSIDE and not piece.endswith("/>"):
                depth += -1 if piece.startswith("</") else 1
                depth = max(depth, 0)
            pieces.append((piece, False))
        else:
            pieces.append((piece, depth == 0))
    return pieces


def mention_candidates(body: str) -> set[str]:
    """Usernames written as @name in the post's text (not in code or links)."""
    names: set[str] = set()
    for piece, mentionable in _text_segments(render_markdown(body)):
        if mentionable:
            names.update(_username(m) for m in MENTION.findall(piece))
    return {name for name in names if name}


def post_html(body: str, *, usernames: Collection[str] = ()) -> str:
    """The post's HTML, with ``@name`` for each name in ``usernames`` marked as a mention."""
    html = render_markdown(body)
    if not usernames:
        return html

    def mark(match: re.Match[str]) -> str:
        name = _username(match[1])
        if name not in usernames:
            return match[0]
        rest = match[1][len(name) :]
        return f'<span class="mention">@{name}</span>{rest}'

    out = [MENTION.sub(mark, piece) if ok else piece for piece, ok in _text_segments(html)]
    # Names are [A-Za-z0-9_.+-] only, so this adds no markup but the span; clean it anyway.
    return nh3.clean(
        "".join(out),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def external_link_count(body: str) -> int:
    return len(EXTERNAL_LINK.findall(body))


def quote_markdown(*, body: str, username: str, post_url: str, number: int) -> str:
    """A post as a markdown quote with who wrote it, to start a reply with."""
    quoted = "\n".join(f"> {line}" if line else ">" for line in body.strip().splitlines())
    return f"> @{username} wrote in [#{number}]({post_url}):\n>\n{quoted}\n\n"
