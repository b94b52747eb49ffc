"""Services that turn parsed notebooks (``courses.notebooks``) into chapters and questions.

A notebook becomes the chapter whose slug comes from its title; importing it again updates that
chapter in place. Questionnaire items become free-text questions keyed ``q-01``, ``q-02``, ... by
position, so a re-import rewrites prompts but keeps question ids, and with them student answers,
and never touches what the instructor added (reference answers, explanations, points, kind).
Further-research items become a "Further research" list at the end of the chapter body: an
``Assignment`` needs a real dataset, which a notebook does not carry (see docs/decisions.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils.text import slugify

from courses.course_folder import ImportReport, _upsert
from courses.models import Chapter, Course, Question, Questionnaire
from courses.notebooks import ParsedNotebook

SLUG_MAX_LENGTH = 80
FURTHER_RESEARCH_HEADING = "## Further research"


class NotebookImportError(Exception):
    """This notebook cannot be imported as it is; nothing of it was written."""


@dataclass
class NotebookImportResult:
    """What importing one notebook did (or, in a dry run, would do)."""

    notebook: str
    title: str = ""
    chapter: str = ""
    created: bool = False
    updated: bool = False
    questions: int = 0
    further_research: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "notebook": self.notebook,
            "title": self.title,
            "chapter": self.chapter,
            "created": self.created,
            "updated": self.updated,
            "questions": self.questions,
            "further_research": self.further_research,
            "skipped": self.skipped,
        }
        if self.error:
            data["error"] = self.error
        return data


def chapter_slug_for_title(*, title: str) -> str:
    return slugify(title)[:SLUG_MAX_LENGTH].strip("-") or "chapter"


def question_key(*, position: int) -> str:
    return f"q-{position + 1:02d}"


def chapter_body_for_notebook(*, notebook: ParsedNotebook) -> str:
    body = notebook.body.rstrip("\n")
    if notebook.further_research:
        items = "\n".join(
            f"1. {item.replace(chr(10), chr(10) + '   ')}" for item in notebook.further_research
        )
        body = f"{body}\n\n{FURTHER_RESEARCH_HEADING}\n\n{items}".lstrip("\n")
    return body + "\n" if body else ""


def _questions_import(
    *, questionnaire: Questionnaire, prompts: list[str], report: ImportReport
) -> None:
    keys = [question_key(position=position) for position in range(len(prompts))]
    stale = questionnaire.questions.exclude(key__in=keys)
    answered = list(stale.filter(answers__isnull=False).distinct().values_list("key", flat=True))
    if answered:
        raise NotebookImportError(
            f"the notebook now has {len(prompts)} questionnaire items, but students already "
            f"answered question{'s' if len(answered) != 1 else ''} {', '.join(answered)} "
            "beyond them; remove those questions by hand first if that is what you want"
        )
    report.deleted += stale.delete()[0]
    existing = {q.key: q for q in questionnaire.questions.all()}
    for position, (key, prompt) in enumerate(zip(keys, prompts, strict=True)):
        question = existing.get(key)
        if question is None:
            question = Question(
                questionnaire=questionnaire,
                key=key,
                position=position,
                kind=Question.Kind.FREE_TEXT,
                prompt=prompt,
            )
            question.full_clean(validate_unique=False, validate_constraints=False)
            question.save()
            report.created += 1
        elif (question.prompt, question.position) != (prompt, position):
            question.prompt, question.position = prompt, position
            question.save(update_fields=["prompt", "position", "updated_at"])
            report.updated += 1
        else:
            report.unchanged += 1


def chapter_import_from_notebook(
    *, course: Course, notebook: ParsedNotebook, dry_run: bool = False
) -> NotebookImportResult:
    """Create or update the chapter for ``notebook``; all or nothing.

    With ``dry_run`` the same work runs and is rolled back, so the result is exactly what a real
    import would report. Raises ``NotebookImportError`` when the import would lose answers.
    """
    slug = chapter_slug_for_title(title=notebook.title)
    result = NotebookImportResult(
        notebook=notebook.name,
        title=notebook.title,
        chapter=slug,
        questions=len(notebook.questions),
        further_research=len(notebook.further_research),
        skipped=[{"what": s.what, "why": s.why} for s in notebook.skipped],
    )
    report = ImportReport()
    with transaction.atomic():
        existing = Chapter.objects.filter(course=course, slug=slug).first()
        if existing is not None:
            position = existing.position
        else:
            last = Chapter.objects.filter(course=course).aggregate(last=Max("position"))["last"]
            position = 0 if last is None else last + 1
        chapter = _upsert(
            Chapter,
            report,
            {"course": course, "slug": slug},
            {
                "title": notebook.title[:200],
                "body": chapter_body_for_notebook(notebook=notebook),
                "position": position,
            },
        )
        result.created = existing is None
        if notebook.questions:
            # Created with the defaults; an existing questionnaire's settings are the instructor's.
            questionnaire = _upsert(Questionnaire, report, {"chapter": chapter}, {})
            _questions_import(
                questionnaire=questionnaire, prompts=notebook.questions, report=report
            )
        result.updated = not result.created and report.changed
        if dry_run:
            transaction.set_rollback(True)
    return result


def chapters_import_from_notebooks(
    *, course: Course, notebooks: Sequence[ParsedNotebook], dry_run: bool = False
) -> list[NotebookImportResult]:
    """Import each notebook on its own: one that fails is reported and changes nothing, the
    others still import. Two notebooks with the same chapter slug: the second one fails."""
    results = []
    seen: dict[str, str] = {}
    for notebook in notebooks:
        slug = chapter_slug_for_title(title=notebook.title)
        if slug in seen:
            results.append(
                NotebookImportResult(
                    notebook=notebook.name,
                    title=notebook.title,
                    chapter=slug,
                    error=f"{seen[slug]} has the same title, so it would be the same chapter",
                )
            )
            continue
        seen[slug] = notebook.name
        try:
            results.append(
                chapter_import_from_notebook(course=course, notebook=notebook, dry_run=dry_run)
            )
        except NotebookImportError as error:
            results.append(
                NotebookImportResult(
                    notebook=notebook.name, title=notebook.title, chapter=slug, error=str(error)
                )
            )
    return results
