"""Services that turn parsed notebooks (``courses.notebooks``) into chapters and questions.

A notebook becomes the chapter whose slug comes from its title; importing it again updates that
chapter in place. Questionnaire items become free-text questions keyed ``q-01``, ``q-02``, ... by
position, so a re-import rewrites prompts but keeps question ids, and with them student answers,
and never touches what the instructor added (reference answers, explanations, points, kind).
Further-research items become draft assignments of the chapter, ``<chapter>-research-01``, ...:
no dataset, unpublished, titled by the item's first sentence and described by the item. A
re-import rewrites their titles and descriptions and nothing the instructor set (dataset, metric,
limits, baselines, publishing); see docs/decisions.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Max, Model
from django.utils.text import slugify

from courses.models import Chapter, Course, Question, Questionnaire
from courses.notebooks import ParsedNotebook, research_title
from grader.authoring import assignment_create
from grader.models import Assignment

SLUG_MAX_LENGTH = 80
RESEARCH_SUFFIX = "-research-"


@dataclass
class _Changes:
    """What an import wrote, to tell "updated" from "unchanged"."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


def _upsert(
    model: type[Model], changes: _Changes, lookup: dict[str, Any], values: dict[str, Any]
) -> Any:
    """Create, or save only the fields that differ, so an unchanged import writes nothing."""
    manager = model._default_manager
    instance = manager.filter(**lookup).first()
    if instance is None:
        changes.created += 1
        return manager.create(**lookup, **values)
    differ = [name for name, value in values.items() if getattr(instance, name) != value]
    if not differ:
        changes.unchanged += 1
        return instance
    for name in differ:
        setattr(instance, name, values[name])
    concrete = {f.name for f in instance._meta.concrete_fields}
    instance.save(update_fields=[*differ, *({"updated_at"} & concrete)])
    changes.updated += 1
    return instance


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
    return body + "\n" if body else ""


def research_slug(*, chapter: Chapter, position: int) -> str:
    """``<chapter-slug>-research-NN`` for the item at ``position`` (from 0), within 80 chars."""
    suffix = f"{RESEARCH_SUFFIX}{position + 1:02d}"
    return chapter.slug[: SLUG_MAX_LENGTH - len(suffix)].rstrip("-") + suffix


def _research_ids(*, chapter: Chapter, position: int) -> list[str]:
    """The slugs (and stable ids) the item may have, most likely first: assignment slugs are
    unique across courses, so a second course importing the same notebook gets its own."""
    base = research_slug(chapter=chapter, position=position)
    prefixed = f"{chapter.course.slug}-{base}"
    return [base, prefixed[-SLUG_MAX_LENGTH:].lstrip("-")]


def _further_research_import(
    *, chapter: Chapter, items: list[str], changes: _Changes, skipped: list[dict[str, str]]
) -> None:
    """One draft assignment per item, found again by its stable id on a re-import."""
    ours = {
        assignment.uid: assignment
        for assignment in Assignment.objects.filter(
            chapter=chapter, uid__contains=RESEARCH_SUFFIX
        ).annotate(has_submissions=Max("submissions__id"))
    }
    kept: set[str] = set()
    for position, item in enumerate(items):
        ids = _research_ids(chapter=chapter, position=position)
        title = research_title(item)
        existing = next((ours[uid] for uid in ids if uid in ours), None)
        if existing is not None:
            kept.add(existing.uid)
            if (existing.title, existing.description) == (title, item):
                changes.unchanged += 1
                continue
            existing.title, existing.description = title, item
            existing.save(update_fields=["title", "description", "updated_at"])
            changes.updated += 1
            continue
        taken = set(Assignment.objects.filter(slug__in=ids).values_list("slug", flat=True)) | set(
            Assignment.objects.filter(uid__in=ids).values_list("uid", flat=True)
        )
        free = next((slug for slug in ids if slug not in taken), None)
        if free is None:
            skipped.append(
                {
                    "what": f"further research item {position + 1}",
                    "why": f"the assignment addresses {', '.join(ids)} are all taken",
                }
            )
            continue
        created = assignment_create(
            chapter=chapter, title=title, slug=free, uid=free, description=item
        )
        kept.add(created.uid)
        changes.created += 1
    # Items gone from the notebook: their drafts go, unless students worked on them or the
    # instructor published them.
    for uid, assignment in ours.items():
        if uid in kept or not _is_research_id(uid, chapter=chapter):
            continue
        if assignment.has_submissions is not None or assignment.published:
            why = "it has submissions" if assignment.has_submissions else "it is published"
            skipped.append(
                {
                    "what": f"assignment {assignment.slug}",
                    "why": f"kept although its item left the notebook: {why}",
                }
            )
            continue
        assignment.delete()
        changes.deleted += 1


def _is_research_id(uid: str, *, chapter: Chapter) -> bool:
    head, _, number = uid.rpartition(RESEARCH_SUFFIX)
    stem = chapter.slug[: SLUG_MAX_LENGTH - len(RESEARCH_SUFFIX) - 2].rstrip("-")
    return number.isdigit() and (head == stem or head.endswith(f"-{stem}"))


def _questions_import(
    *, questionnaire: Questionnaire, prompts: list[str], report: _Changes
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
    report = _Changes()
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
        _further_research_import(
            chapter=chapter,
            items=notebook.further_research,
            changes=report,
            skipped=result.skipped,
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
