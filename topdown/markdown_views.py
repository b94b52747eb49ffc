"""Live preview for markdown editors: the same renderer and sanitiser the published page uses."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from topdown.markdown import render_markdown

# Longer than any chapter we know of; a cap keeps a pasted megabyte from tying up a web process.
PREVIEW_MAX_CHARS = 200_000


@login_required
@require_POST
def markdown_preview(request: HttpRequest) -> JsonResponse:
    text = request.POST.get("text", "")
    if len(text) > PREVIEW_MAX_CHARS:
        message = f"Too long to preview: {len(text):,} characters, at most {PREVIEW_MAX_CHARS:,}."
        return JsonResponse({"error": message}, status=413)
    # Bypass the renderer's cache: drafts change with every keystroke and would evict the pages.
    return JsonResponse({"html": render_markdown.__wrapped__(text)})
