"""The forum's pieces on other apps' pages: "Discuss this" with a thread count, and the help a
failed run's page offers. Each is one inclusion tag, so those pages need no forum code in their
views; each costs the page one or two queries."""

from __future__ import annotations

import difflib
from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from courses.models import Chapter, Course, Question, Questionnaire
from forum import selectors
from forum.errors import run_error_of
from grader.models import Assignment, RunStatus, Submission
from topdown import fragments

register = template.Library()


@register.inclusion_tag("forum/tags/discuss.html")
def forum_discuss_chapter(course: Course, chapter: Chapter) -> dict[str, Any]:
    return {
        "count": selectors.thread_count_for_chapter(chapter=chapter),
        "url": reverse("forum:category_chapter", args=[course.slug, chapter.slug]),
        "what": "this chapter",
    }


@register.inclusion_tag("forum/tags/discuss_link.html")
def forum_discuss_assignment(course: Course, assignment: Assignment) -> dict[str, Any]:
    return {
        "count": selectors.thread_count_for_assignment(assignment=assignment),
        "url": reverse("forum:anchor_detail", args=[course.slug, "assignment", assignment.pk]),
        "what": "this assignment",
    }


@register.simple_tag
def forum_discuss_questionnaire(
    course: Course, questionnaire: Questionnaire, questions: list[Question]
) -> SafeString:
    """A link to each question's threads with their count: a fragment (``topdown.fragments``),
    drawn once per process for each distinct set of counts."""
    counts = selectors.thread_counts_for_questionnaire(questionnaire=questionnaire)
    return fragments.render_fragment(
        "forum/tags/discuss_questions.html",
        course_slug=course.slug,
        chapter_slug=questionnaire.chapter.slug,
        rows=tuple(
            (position, question.pk, counts.get(question.pk, 0))
            for position, question in enumerate(questions, start=1)
        ),
        total=sum(counts.values()),
    )


@register.inclusion_tag("forum/tags/submission_help.html", takes_context=True)
def forum_submission_help(context: template.Context, submission: Submission) -> dict[str, Any]:
    """ "Ask on the forum" for the run's own student; for a failed run, who else hit the same
    error on the assignment and the threads about it (two queries, none for other runs)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not submission.is_finished:
        return {"show": False}
    is_own = submission.user_id == user.pk
    group = None
    if submission.status == RunStatus.FAILED:
        signature = run_error_of(submission).signature
        group = selectors.error_group(
            assignment_id=submission.assignment_id, signature=signature, user=submission.user
        )
    return {
        "show": is_own or bool(group and (group.others or group.threads)),
        "is_own": is_own,
        "failed": submission.status == RunStatus.FAILED,
        "ask_url": reverse("forum:ask_submission", args=[submission.pk]),
        "group": group,
    }


@register.simple_tag
def text_diff(before: str, after: str) -> SafeString:
    """A line diff of two versions of a post's markdown, every line escaped."""
    lines = []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        kind = {"+": "diff-added", "-": "diff-removed", "@": "diff-hunk"}.get(line[:1], "")
        lines.append((kind, line))
    if not lines:
        return format_html('<p class="muted small">{}</p>', "The text did not change.")
    body = format_html_join("\n", '<span class="{}">{}</span>', lines)
    return format_html('<pre class="post-diff">{}</pre>', body)
