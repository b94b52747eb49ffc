"""Read a Jupyter notebook (nbformat 4) as a chapter: title, body, questionnaire, further research.

Pure: no database, no Django models. ``notebook_parse`` never raises for a notebook that merely
lacks the sections; it says what it skipped and why. It raises ``NotebookError`` only for input
that is not a notebook at all.

The rules, kept simple on purpose:

- **Title**: the first markdown heading of any level (``# Your Deep Learning Journey``), its
  markup cleaned; that line is left out of the body. No heading: the file name.
- **Body**: every cell before the questionnaire heading. Markdown cells as they are (cleaned, see
  below); code cells as fenced ``python`` blocks without their outputs. Code cells whose first
  line is ``#hide`` (fastbook's marker for set-up code) and whole-line anchors such as
  ``[[chapter_intro]]`` are left out.
- **Questionnaire**: the items of the numbered list under a heading reading "Questionnaire"
  (any level, any case, optional trailing colon), up to the next heading. The heading and the list
  may share a cell or not; paragraphs, tips (``> tip: ...``) and code between them are skipped.
  Items may all be numbered ``1.``; continuation lines and indented sub-items belong to their item.
  A section with no numbered list falls back to a bulleted one.
- **Further research**: the same, under a heading reading "Further research".
- **Cleaning** (outside code): cross-references ``<<anchor>>`` become ``anchor`` and
  ``<<anchor, text>>`` become ``text``; images with an ``http(s)`` URL stay, other images (files
  beside the notebook, attachments) become ``*[image: alt]*`` because their files are not in the
  notebook's JSON. Inline code is never touched.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any

HEADING_RE = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
FENCE_RE = re.compile(r"^ {0,3}(```|~~~)")
ITEM_RE = re.compile(
    r"^(?P<indent> *)(?P<marker>\d{1,9}[.)]|[-*+])(?:(?P<gap>[ \t]+)(?P<text>.*))?$"
)
ANCHOR_LINE_RE = re.compile(r"^\s*\[\[[\w\-:.]+\]\]\s*$")
CROSS_REFERENCE_RE = re.compile(r"<<\s*([^<>,\n]+?)\s*(?:,\s*([^<>\n]+?)\s*)?>>")
INLINE_CODE_RE = re.compile(r"(`+)(?:.+?)\1")
MARKDOWN_IMAGE_RE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_IMAGE_RE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
HTML_ATTRIBUTE_RE = r"\b{}\s*=\s*(?:\"([^\"]*)\"|'([^']*)')"
HIDE_RE = re.compile(r"^\s*#\s*hide\b", re.IGNORECASE)
EXCERPT_LENGTH = 60
TITLE_LENGTH = 80
SENTENCE_END_RE = re.compile(r"[.?!:](?=\s|$)")
MARKDOWN_LINK_RE = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


class NotebookError(ValueError):
    """The file is not a Jupyter notebook this importer reads; the message says why."""


@dataclass(frozen=True)
class Skipped:
    what: str
    why: str


@dataclass
class ParsedNotebook:
    name: str
    title: str
    body: str
    questions: list[str] = field(default_factory=list)
    further_research: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParsedNotebook:
        return cls(
            name=str(data["name"]),
            title=str(data["title"]),
            body=str(data["body"]),
            questions=[str(q) for q in data["questions"]],
            further_research=[str(f) for f in data["further_research"]],
            skipped=[Skipped(what=str(s["what"]), why=str(s["why"])) for s in data["skipped"]],
        )


def research_title(item: str, *, limit: int = TITLE_LENGTH) -> str:
    """A title for a further-research item: its first sentence (or line), as plain text, cut at a
    word to about ``limit`` characters. "Why is a GPU useful? Think of..." gives "Why is a GPU
    useful?"; a sentence ending in a full stop or colon loses it."""
    first = next((line.strip() for line in item.split("\n") if line.strip()), "")
    first = MARKDOWN_LINK_RE.sub(lambda m: m.group(1), first)
    first = " ".join(first.replace("`", "").replace("**", "").split())
    first = re.sub(r"(?<!\w)\*(\S(?:.*?\S)?)\*(?!\w)", r"\1", first)  # *emphasis*
    # The first sentence, unless it is too short to name anything ("E.g.", "1.").
    for end in SENTENCE_END_RE.finditer(first):
        if end.start() >= 15:
            first = first[: end.end()]
            break
    first = first.rstrip(".:").strip()
    if len(first) > limit:
        cut = first[: limit - 1].rsplit(" ", 1)[0] if " " in first[: limit - 1] else first
        first = cut[: limit - 1].rstrip(" ,;") + "…"
    return first or "Further research"


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_LENGTH else text[: EXCERPT_LENGTH - 1] + "…"


def _cells(source: str | bytes | dict[str, Any]) -> list[tuple[str, str]]:
    """(cell_type, text) for each cell, after checking the JSON is an nbformat 4 notebook."""
    if isinstance(source, dict):
        data: Any = source
    else:
        try:
            data = json.loads(source)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise NotebookError(f"not valid JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookError("not a Jupyter notebook: no list of 'cells'")
    if data.get("nbformat") != 4:
        raise NotebookError(
            f"not an nbformat 4 notebook (nbformat is {data.get('nbformat')!r}); "
            "save it with Jupyter 4 or later"
        )
    cells = []
    for number, cell in enumerate(data["cells"], start=1):
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            raise NotebookError(f"cell {number} has no 'cell_type'")
        text = cell.get("source", "")
        if isinstance(text, list) and all(isinstance(part, str) for part in text):
            text = "".join(text)
        if not isinstance(text, str):
            raise NotebookError(f"cell {number}: 'source' must be a string or a list of strings")
        cells.append((cell["cell_type"], text.replace("\r\n", "\n").expandtabs(4)))
    return cells


def _clean_prose(text: str, skipped: list[Skipped]) -> str:
    """Cross-references and images in text that is not code."""

    def image(alt: str, src: str, original: str) -> str:
        if src.startswith(("http://", "https://")):
            return original
        skipped.append(
            Skipped(
                what=f"image {src}",
                why="the image file is not inside the notebook; upload it and link it by URL",
            )
        )
        label = alt.strip() or PurePath(src).name
        return f"*[image: {label}]*"

    def html_image(match: re.Match[str]) -> str:
        tag = match.group(0)
        found = {
            name: re.search(HTML_ATTRIBUTE_RE.format(name), tag, re.IGNORECASE)
            for name in ("src", "alt")
        }
        src = next((g for g in found["src"].groups() if g is not None), "") if found["src"] else ""
        alt = next((g for g in found["alt"].groups() if g is not None), "") if found["alt"] else ""
        return image(alt, src, tag)

    text = CROSS_REFERENCE_RE.sub(lambda m: m.group(2) or m.group(1), text)
    text = MARKDOWN_IMAGE_RE.sub(lambda m: image(m.group(1), m.group(2), m.group(0)), text)
    return HTML_IMAGE_RE.sub(html_image, text)


def clean_markdown(text: str, skipped: list[Skipped]) -> str:
    """``text`` with cross-reference markup and unreachable images replaced (see module doc);
    fenced code and inline code spans are left exactly as they are."""
    lines = []
    in_fence = False
    for line in text.split("\n"):
        if FENCE_RE.match(line):
            in_fence = not in_fence
            lines.append(line)
            continue
        if in_fence:
            lines.append(line)
            continue
        parts, last = [], 0
        for match in INLINE_CODE_RE.finditer(line):
            parts.append(_clean_prose(line[last : match.start()], skipped))
            parts.append(match.group(0))
            last = match.end()
        parts.append(_clean_prose(line[last:], skipped))
        lines.append("".join(parts))
    return "\n".join(lines)


def _section_kind(heading_text: str) -> str | None:
    words = " ".join(heading_text.strip().rstrip(":").strip().lower().split())
    if words == "questionnaire":
        return "questionnaire"
    if words == "further research":
        return "further_research"
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def list_items(lines: list[str | None], *, section: str) -> tuple[list[str], list[Skipped]]:
    """The items of the list in a section's lines (``None`` stands for a code cell).

    Top-level items are the numbered ones (bulleted when there are none); anything indented more
    than the first item's marker, and lines that continue an item without a blank line, belong to
    that item. Everything else is skipped and reported.
    """
    skipped: list[Skipped] = []
    fenced = _fenced_lines(lines)
    markers = [
        match
        for line, in_fence in zip(lines, fenced, strict=True)
        if line is not None and not in_fence
        for match in [ITEM_RE.match(line)]
        if match and len(match.group("indent")) <= 3
    ]
    ordered = any(m.group("marker")[0].isdigit() for m in markers)
    top = [m for m in markers if m.group("marker")[0].isdigit() == ordered]
    base_indent = len(top[0].group("indent")) if top else 0

    items: list[list[str]] = []
    current: list[str] | None = None
    content_indent = 0
    after_blank = False
    loose: list[str] = []

    def flush_loose() -> None:
        if not loose:
            return
        text = "\n".join(loose)
        if text.lstrip().startswith(">"):
            why = f"a tip or note in the {section} section, not a list item"
        elif text.lstrip().startswith(("```", "~~~")):
            why = f"code in the {section} section, not a list item"
        else:
            why = f"text in the {section} section that is not a list item"
        skipped.append(Skipped(what=f"“{_excerpt(text)}”", why=why))
        loose.clear()

    for line, in_fence in zip(lines, fenced, strict=True):
        if line is None:
            flush_loose()
            current = None
            skipped.append(Skipped(what="a code cell", why=f"code in the {section} section"))
            continue
        if not line.strip():
            after_blank = True
            flush_loose()
            if current is not None:
                current.append("")
            continue
        indent = _indent(line)
        match = None if in_fence else ITEM_RE.match(line)
        is_top = (
            match is not None
            and indent <= base_indent
            and match.group("marker")[0].isdigit() == ordered
        )
        if match is not None and is_top:
            flush_loose()
            gap = len(match.group("gap") or " ")
            content_indent = indent + len(match.group("marker")) + min(gap, 4)
            current = [match.group("text") or ""]
            items.append(current)
        elif current is not None and (
            indent > base_indent or (not after_blank and not line.lstrip().startswith(">"))
        ):
            current.append(line[min(indent, content_indent) :])
        else:
            current = None
            loose.append(line)
        after_blank = False
    flush_loose()

    texts = []
    for number, item in enumerate(items, start=1):
        text = "\n".join(item).strip()
        if text:
            texts.append(text)
        else:
            skipped.append(Skipped(what=f"{section} item {number}", why="the item is empty"))
    return texts, skipped


def _fenced_lines(lines: list[str | None]) -> list[bool]:
    """For each line, whether it is inside (or opens/closes) a fenced code block."""
    result = []
    in_fence = False
    for line in lines:
        if line is None:
            in_fence = False
            result.append(False)
            continue
        if FENCE_RE.match(line.lstrip()):
            result.append(True)
            in_fence = not in_fence
            continue
        result.append(in_fence)
    return result


def notebook_parse(source: str | bytes | dict[str, Any], *, name: str) -> ParsedNotebook:
    """Read one notebook. Raises ``NotebookError`` when it is not an nbformat 4 notebook."""
    cells = _cells(source)
    skipped: list[Skipped] = []
    title = ""
    body: list[str] = []
    sections: dict[str, list[str | None]] = {}
    current: str = "body"
    trailing_cells = 0

    for cell_type, text in cells:
        if cell_type == "code":
            if current == "body":
                if text.strip() and not HIDE_RE.match(text):
                    body.append(f"```python\n{text.strip(chr(10))}\n```")
            elif current in sections:
                sections[current].append(None)
            elif text.strip():
                trailing_cells += 1
            continue
        if cell_type != "markdown":
            if text.strip():
                skipped.append(Skipped(what=f"a {cell_type} cell", why="only markdown and code"))
            continue
        kept: list[str] = []
        in_fence = False
        for line in text.split("\n"):
            if FENCE_RE.match(line):
                in_fence = not in_fence
            heading = None if in_fence else HEADING_RE.match(line)
            kind = _section_kind(heading.group(2)) if heading else None
            if heading and kind is not None:
                if kind in sections:
                    skipped.append(
                        Skipped(
                            what=f"a second “{heading.group(2)}” heading",
                            why="its items join the first section",
                        )
                    )
                current = kind
                sections.setdefault(kind, [])
                continue
            if heading and current != "body":
                # Any other heading ends the questionnaire or further-research section.
                current = "after"
            if current == "body":
                if heading and not title:
                    title = clean_markdown(heading.group(2), skipped).strip()
                elif not ANCHOR_LINE_RE.match(line):
                    kept.append(line)
            elif current in sections:
                sections[current].append(line)
        if current in sections:
            sections[current].append("")  # a cell boundary ends a paragraph
        elif current == "after":
            trailing_cells += 1
        if kept and "\n".join(kept).strip():
            body.append(clean_markdown("\n".join(kept).strip("\n"), skipped))

    if not title:
        title = PurePath(name).stem.replace("_", " ").replace("-", " ").strip() or "Untitled"
        skipped.append(Skipped(what="the title", why="no heading; the file name is the title"))

    results: dict[str, list[str]] = {}
    for kind, label in (
        ("questionnaire", "Questionnaire"),
        ("further_research", "Further Research"),
    ):
        if kind not in sections:
            skipped.append(Skipped(what=f"the {label} section", why="the notebook has none"))
            results[kind] = []
            continue
        items, item_skips = list_items(sections[kind], section=label)
        skipped.extend(item_skips)
        results[kind] = [clean_markdown(item, skipped) for item in items]
        if not items:
            skipped.append(Skipped(what=f"the {label} section", why="it has no list items"))
    if trailing_cells:
        skipped.append(
            Skipped(
                what=f"{trailing_cells} cell{'s' if trailing_cells != 1 else ''} after the "
                "questionnaire",
                why="only the list items after the Questionnaire heading are read",
            )
        )
    return ParsedNotebook(
        name=name,
        title=title,
        body="\n\n".join(body).strip() + "\n" if body else "",
        questions=results["questionnaire"],
        further_research=results["further_research"],
        skipped=skipped,
    )
