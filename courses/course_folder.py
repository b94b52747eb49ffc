"""Import a course folder (docs/course-format.md) into the database, and export a course as one.

Import matches everything by its stable id (chapters by ``uid``, questions by ``key`` within their
questionnaire, assignments by ``uid``), so renaming a slug or a title updates in place and answers
and submissions stay attached. It is all or nothing: the folder is read and checked first (see
``courses.course_format``), then checked against the database, then written in one transaction.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import F, Model, Q, QuerySet

from accounts.models import User
from courses.authoring import question_remove
from courses.course_format import (
    COURSE_FILE,
    AssignmentSpec,
    BaselineSpec,
    ChapterSpec,
    ChoiceSpec,
    CourseFolderError,
    CourseSpec,
    QuestionnaireSpec,
    QuestionSpec,
    RubricItemSpec,
    course_folder_parse,
    course_folder_write,
)
from courses.models import (
    Attempt,
    Chapter,
    Choice,
    Course,
    Question,
    Questionnaire,
    Role,
    RubricItem,
)
from grader.metrics import METRICS
from grader.models import Assignment, Baseline, Dataset

__all__ = [
    "CourseFolderError",
    "ImportReport",
    "course_folder_export",
    "course_folder_import",
    "course_folder_parse",
    "course_spec_from_db",
]

BASELINE_FILENAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.(py|ipynb)$")


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    archived: int = 0
    unchanged: int = 0
    # What changed, one line each ("updated question first-model/why-whole-first").
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted or self.archived)

    def summary(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, {self.archived} archived, "
            f"{self.deleted} deleted, {self.unchanged} unchanged"
        )

    def note(self, what: str, label: str) -> None:
        if label:
            self.changes.append(f"{what} {label}")


def _apply(instance: Model, values: dict[str, Any]) -> bool:
    """Set the fields that differ and save only those; say whether any did."""
    changed = [name for name, value in values.items() if getattr(instance, name) != value]
    if not changed:
        return False
    for name in changed:
        setattr(instance, name, values[name])
    instance.full_clean(validate_unique=False, validate_constraints=False)
    instance.save(
        update_fields=[*changed, *(["updated_at"] if hasattr(instance, "updated_at") else [])]
    )
    return True


def _upsert(
    model: type[Model],
    report: ImportReport,
    lookup: dict[str, Any],
    values: dict[str, Any],
    label: str = "",
) -> Any:
    """Create, or update only the fields that differ, so an unchanged import writes nothing."""
    manager = model._default_manager
    instance = manager.filter(**lookup).first()
    if instance is None:
        report.created += 1
        report.note("created", label)
        return manager.create(**lookup, **values)
    if _apply(instance, values):
        report.updated += 1
        report.note("updated", label)
    else:
        report.unchanged += 1
    return instance


# --- Checks against the database, before anything is written ---------------------------------


def _dataset_for(spec: AssignmentSpec) -> Dataset | None:
    if spec.dataset is None:
        return None
    versions = Dataset.objects.filter(slug=spec.dataset)
    if spec.dataset_version is not None:
        return versions.filter(version=spec.dataset_version).first()
    return versions.order_by("-version").first()


def _chapter_has_student_work(chapters: QuerySet[Chapter]) -> list[str]:
    # Deleting a chapter deletes its questionnaire's attempts and its forum category's threads.
    worked = chapters.filter(
        Q(questionnaire__attempts__isnull=False)
        | Q(forum_category__threads__isnull=False)
        | Q(assignments__submissions__isnull=False)
    ).distinct()
    return sorted(chapter.uid for chapter in worked)


def _database_problems(spec: CourseSpec, course: Course | None) -> list[str]:
    problems = []
    in_course = Q(chapter__course=course) if course is not None else Q(pk__in=[])
    for assignment in spec.assignments:
        where = f"assignments/{assignment.slug}/assignment.yaml"
        if assignment.dataset is not None:
            dataset = _dataset_for(assignment)
            if dataset is None:
                version = (
                    f" version {assignment.dataset_version}"
                    if assignment.dataset_version is not None
                    else ""
                )
                problems.append(
                    f"{where}: dataset: no dataset {assignment.dataset!r}{version} is registered "
                    "(register it first: upload it, or run manage.py datasets_load_builtin)"
                )
            elif METRICS[assignment.metric].classification != (
                dataset.task == Dataset.Task.CLASSIFICATION
            ):
                problems.append(
                    f"{where}: metric: {assignment.metric} does not suit the "
                    f"{dataset.get_task_display().lower()} dataset {dataset.slug}"
                )
        for name, value in (("id", assignment.uid), ("slug", assignment.slug)):
            other = (
                Assignment.objects.filter(**{"uid" if name == "id" else "slug": value})
                .exclude(in_course)
                .select_related("chapter__course")
                .first()
            )
            if other is not None:
                problems.append(
                    f"{where}: {name}: {value!r} is taken by an assignment of the course "
                    f"{other.chapter.course.slug}; assignment ids and slugs are unique site-wide"
                )
    if course is None:
        return problems
    kept_chapters = {c.uid for c in spec.chapters}
    removed = Chapter.objects.filter(course=course).exclude(uid__in=kept_chapters)
    for uid in _chapter_has_student_work(removed):
        problems.append(
            f"chapters: the chapter {uid!r} is missing from the folder, but students have work "
            "in it (attempts, forum threads or submissions). Put it back, with published: false "
            "to hide it."
        )
    kept_assignments = {a.uid for a in spec.assignments}
    removed_assignments = (
        Assignment.objects.filter(chapter__course=course)
        .exclude(uid__in=kept_assignments)
        .filter(submissions__isnull=False)
        .distinct()
    )
    for kept_back in removed_assignments:
        problems.append(
            f"assignments: the assignment {kept_back.uid!r} is missing from the folder, but "
            "students submitted to it. Put it back, with published: false to hide it."
        )
    for chapter in spec.chapters:
        if chapter.questionnaire is not None:
            continue
        if Attempt.objects.filter(
            questionnaire__chapter__course=course, questionnaire__chapter__uid=chapter.uid
        ).exists():
            problems.append(
                f"chapters: {chapter.uid}: its questionnaire.yaml is missing, but students "
                "attempted the questionnaire. Keep the file; remove questions to archive them."
            )
    return problems


# --- Writing -----------------------------------------------------------------------------------


def _park_slugs(queryset: QuerySet[Any], targets: dict[str, str]) -> None:
    """Give rows whose slug changes or goes away a temporary one, so renames can swap slugs."""
    for pk, uid, slug in queryset.values_list("pk", "uid", "slug"):
        if targets.get(uid) != slug:
            queryset.filter(pk=pk).update(slug=f"renaming-{pk}")


def _import_questions(
    questionnaire: Questionnaire, specs: list[QuestionSpec], report: ImportReport, where: str
) -> None:
    keys = [q.key for q in specs]
    for gone in questionnaire.questions.exclude(key__in=keys).filter(archived=False):
        # The builder's rule: archived if students answered it, deleted otherwise.
        if question_remove(question=gone):
            report.archived += 1
            report.note("archived", f"question {where}/{gone.key}")
        else:
            report.deleted += 1
            report.note("deleted", f"question {where}/{gone.key}")
    for position, spec in enumerate(specs):
        question = _upsert(
            Question,
            report,
            {"questionnaire": questionnaire, "key": spec.key},
            {
                "position": position,
                "archived": False,
                "kind": spec.kind,
                "prompt": spec.prompt,
                "explanation": spec.explanation,
                "points": spec.points,
                "correct_boolean": spec.correct_boolean,
                "numeric_answer": spec.numeric_answer,
                "tolerance": spec.tolerance,
                "tolerance_mode": spec.tolerance_mode,
                "accepted_answers": spec.accepted_answers,
                "answer_regex": spec.answer_regex,
                "reference_answer": spec.reference_answer,
                "starter_code": spec.starter_code,
                "visible_tests": spec.visible_tests,
                "hidden_tests": spec.hidden_tests,
                "time_limit_seconds": spec.time_limit_seconds,
            },
            label=f"question {where}/{spec.key}",
        )
        # Choices are matched by position: answers store choice ids, so ids must survive edits.
        extra = question.choices.filter(position__gte=len(spec.choices))
        if extra.exists():
            report.deleted += extra.delete()[0]
        for choice_position, choice in enumerate(spec.choices):
            _upsert(
                Choice,
                report,
                {"question": question, "position": choice_position},
                {"text": choice.text, "is_correct": choice.correct},
            )
        extra_items = question.rubric_items.filter(position__gte=len(spec.rubric))
        if extra_items.exists():
            report.deleted += extra_items.delete()[0]
        for item_position, item in enumerate(spec.rubric):
            _upsert(
                RubricItem,
                report,
                {"question": question, "position": item_position},
                {"text": item.text, "points": item.points},
            )


def _import_chapter(
    course: Course, position: int, spec: ChapterSpec, report: ImportReport
) -> Chapter:
    chapter = _upsert(
        Chapter,
        report,
        {"course": course, "uid": spec.uid},
        {
            "slug": spec.slug,
            "title": spec.title,
            "body": spec.body,
            "position": position,
            "published": spec.published,
        },
        label=f"chapter {spec.uid}",
    )
    q_spec = spec.questionnaire
    if q_spec is None:
        deleted, _ = Questionnaire.objects.filter(chapter=chapter).delete()
        if deleted:
            report.deleted += deleted
            report.note("deleted", f"questionnaire of {spec.uid}")
        return chapter
    questionnaire = _upsert(
        Questionnaire,
        report,
        {"chapter": chapter},
        {
            "title": q_spec.title,
            "max_attempts": q_spec.max_attempts,
            "counts": q_spec.counts,
            "reveal": q_spec.reveal,
            "late": q_spec.late,
            "due_at": q_spec.due_at,
        },
        label=f"questionnaire of {spec.uid}",
    )
    _import_questions(questionnaire, q_spec.questions, report, spec.uid)
    return chapter


def _import_assignment(
    spec: AssignmentSpec, chapters: dict[str, Chapter], report: ImportReport
) -> Assignment:
    values: dict[str, Any] = {
        "chapter": chapters[spec.chapter],
        "slug": spec.slug,
        "title": spec.title,
        "position": spec.position,
        "published": spec.published,
        "description": spec.description,
        "starter_code": spec.starter_code,
        "dataset": _dataset_for(spec),
        "metric": spec.metric,
        "public_fraction": spec.public_fraction,
        "wall_seconds": spec.wall_seconds,
        "memory_mb": spec.memory_mb,
        "needs_gpu": spec.needs_gpu,
        "submissions_per_day": spec.submissions_per_day,
        "gpu_seconds_per_day": spec.gpu_seconds_per_day,
        "due_at": spec.due_at,
    }
    if spec.split_seed is not None:
        values["split_seed"] = spec.split_seed
    assignment = Assignment.objects.filter(uid=spec.uid).first()
    created = assignment is None
    if assignment is None:
        # The pass rule may name a baseline that does not exist yet: it is set below.
        assignment = Assignment.objects.create(uid=spec.uid, **values)
        touched = False
    else:
        touched = _apply(assignment, values)
    for baseline in spec.baselines:
        _upsert(
            Baseline,
            report,
            {"assignment": assignment, "name": baseline.name},
            {
                "code": baseline.code,
                "filename": baseline.filename,
                "description": baseline.description,
            },
            label=f"baseline {spec.uid}/{baseline.name}",
        )
    pass_baseline = (
        Baseline.objects.get(assignment=assignment, name=spec.pass_baseline)
        if spec.pass_baseline
        else None
    )
    touched |= _apply(
        assignment,
        {
            "pass_rule": spec.pass_rule,
            "pass_baseline": pass_baseline,
            "pass_threshold": spec.pass_threshold,
        },
    )
    stale = assignment.baselines.exclude(name__in=[b.name for b in spec.baselines])
    for stale_baseline in stale:
        report.note("deleted", f"baseline {spec.uid}/{stale_baseline.name}")
    report.deleted += stale.delete()[0]
    label = f"assignment {spec.uid}"
    if created:
        report.created += 1
        report.note("created", label)
    elif touched:
        report.updated += 1
        report.note("updated", label)
    else:
        report.unchanged += 1
    return assignment


class _DryRun(Exception):
    """Raised inside the import's transaction to roll it back after reporting."""


def course_folder_import(
    root: Path,
    *,
    course: Course | None = None,
    new: bool = False,
    instructor: User | None = None,
    dry_run: bool = False,
) -> tuple[Course, ImportReport]:
    """Import or update the course in ``root``. All or nothing: an error changes nothing.

    ``course``: the folder must be that course (its slug). ``new``: the folder must be a course
    that does not exist yet. ``instructor`` is enrolled as an instructor of the course.
    ``dry_run`` reports what would change and changes nothing. Raises ``CourseFolderError``.
    """
    spec = course_folder_parse(root)
    outcome: list[tuple[Course, ImportReport]] = []
    try:
        with transaction.atomic():
            outcome.append(_import(spec, course=course, new=new, instructor=instructor))
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return outcome[0]


def _import(
    spec: CourseSpec, *, course: Course | None, new: bool, instructor: User | None
) -> tuple[Course, ImportReport]:
    existing = Course.objects.select_for_update().filter(slug=spec.slug).first()
    if course is not None and course.slug != spec.slug:
        raise CourseFolderError(
            [
                f"course.yaml: slug: this folder is the course {spec.slug!r}, not "
                f"{course.slug!r}; upload it to its own course, or change the slug"
            ]
        )
    if new and existing is not None:
        raise CourseFolderError(
            [
                f"course.yaml: slug: a course {spec.slug!r} exists already; change the slug to "
                "make a new course, or upload the folder on that course's page"
            ]
        )
    problems = _database_problems(spec, existing)
    if problems:
        raise CourseFolderError(problems)

    report = ImportReport()
    imported = _upsert(
        Course,
        report,
        {"slug": spec.slug},
        {
            "title": spec.title,
            "description": spec.description,
            "enrolment": spec.enrolment,
            "invite_code": spec.invite_code,
        },
        label=f"course {spec.slug}",
    )
    if instructor is not None:
        # Imported lazily: courses.services imports this module's neighbours.
        from courses.services import enrolment_create

        enrolment_create(user=instructor, course=imported, role=Role.INSTRUCTOR)

    chapters_qs = Chapter.objects.filter(course=imported)
    # Rows made without save() (bulk_create) may lack the stable id that save() fills in.
    chapters_qs.filter(uid="").update(uid=F("slug"))
    Assignment.objects.filter(chapter__course=imported, uid="").update(uid=F("slug"))
    _park_slugs(chapters_qs, {c.uid: c.slug for c in spec.chapters})
    chapters = {
        c.uid: _import_chapter(imported, position, c, report)
        for position, c in enumerate(spec.chapters)
    }
    assignments_qs = Assignment.objects.filter(chapter__course=imported)
    _park_slugs(assignments_qs, {a.uid: a.slug for a in spec.assignments})
    for assignment in spec.assignments:
        _import_assignment(assignment, chapters, report)

    for gone in assignments_qs.exclude(uid__in=[a.uid for a in spec.assignments]):
        gone.delete()
        report.deleted += 1
        report.note("deleted", f"assignment {gone.uid}")
    for gone_chapter in chapters_qs.exclude(uid__in=list(chapters)):
        gone_chapter.delete()
        report.deleted += 1
        report.note("deleted", f"chapter {gone_chapter.uid}")
    return imported, report


# --- Export ------------------------------------------------------------------------------------


def _baseline_filenames(baselines: list[Baseline]) -> list[str]:
    """File names that suit the folder format and differ from each other."""
    names: list[str] = []
    for baseline in baselines:
        name = baseline.filename
        if not BASELINE_FILENAME_RE.match(name):
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem).strip("._-") or "baseline"
            name = f"{stem}.ipynb" if name.endswith(".ipynb") else f"{stem}.py"
        base, dot, suffix = name.rpartition(".")
        number = 2
        while name in names:
            name = f"{base}-{number}{dot}{suffix}"
            number += 1
        names.append(name)
    return names


def course_spec_from_db(course: Course) -> CourseSpec:
    """What the course's folder says: its chapters, live questions and assignments."""
    chapters = (
        Chapter.objects.filter(course=course)
        .select_related("questionnaire")
        .order_by("position", "id")
    )
    questions = (
        Question.objects.filter(questionnaire__chapter__course=course, archived=False)
        .prefetch_related("choices", "rubric_items")
        .order_by("position", "id")
    )
    by_questionnaire: dict[int, list[Question]] = {}
    for question in questions:
        by_questionnaire.setdefault(question.questionnaire_id, []).append(question)
    chapter_specs = []
    for chapter in chapters:
        questionnaire = getattr(chapter, "questionnaire", None)
        chapter_specs.append(
            ChapterSpec(
                uid=chapter.uid or chapter.slug,
                slug=chapter.slug,
                title=chapter.title,
                body=chapter.body,
                published=chapter.published,
                questionnaire=None
                if questionnaire is None
                else QuestionnaireSpec(
                    title=questionnaire.title,
                    max_attempts=questionnaire.max_attempts,
                    counts=questionnaire.counts,
                    reveal=questionnaire.reveal,
                    late=questionnaire.late,
                    due_at=questionnaire.due_at,
                    questions=[
                        _question_spec(q) for q in by_questionnaire.get(questionnaire.pk, [])
                    ],
                ),
            )
        )
    return CourseSpec(
        slug=course.slug,
        title=course.title,
        description=course.description,
        enrolment=course.enrolment,
        invite_code=course.invite_code,
        chapters=chapter_specs,
        assignments=_assignment_specs(course),
    )


def _question_spec(q: Question) -> QuestionSpec:
    return QuestionSpec(
        key=q.key,
        kind=q.kind,
        prompt=q.prompt,
        explanation=q.explanation,
        points=q.points,
        choices=[ChoiceSpec(c.text, c.is_correct) for c in q.choices.all()],
        correct_boolean=q.correct_boolean,
        numeric_answer=q.numeric_answer,
        tolerance=q.tolerance,
        tolerance_mode=q.tolerance_mode,
        accepted_answers=list(q.accepted_answers),
        answer_regex=q.answer_regex,
        reference_answer=q.reference_answer,
        rubric=[RubricItemSpec(item.text, item.points) for item in q.rubric_items.all()],
        starter_code=q.starter_code,
        visible_tests=q.visible_tests,
        hidden_tests=q.hidden_tests,
        time_limit_seconds=q.time_limit_seconds,
    )


def _assignment_specs(course: Course) -> list[AssignmentSpec]:
    assignments = (
        Assignment.objects.filter(chapter__course=course)
        .select_related("chapter", "dataset", "pass_baseline")
        .prefetch_related("baselines")
        .order_by("slug")
    )
    # Ordered by version, so each slug keeps its latest.
    latest = dict(
        Dataset.objects.filter(slug__in=[a.dataset.slug for a in assignments if a.dataset])
        .order_by("slug", "version")
        .values_list("slug", "version")
    )
    specs = []
    for a in assignments:
        baselines = list(a.baselines.all())
        filenames = _baseline_filenames(baselines)
        dataset = a.dataset
        specs.append(
            AssignmentSpec(
                uid=a.uid or a.slug,
                slug=a.slug,
                title=a.title,
                chapter=a.chapter.uid or a.chapter.slug,
                position=a.position,
                published=a.published,
                description=a.description,
                starter_code=a.starter_code,
                dataset=dataset.slug if dataset else None,
                # Pinned only when not the latest: a folder without a version follows updates.
                dataset_version=(
                    dataset.version
                    if dataset is not None and latest.get(dataset.slug) != dataset.version
                    else None
                ),
                metric=a.metric,
                public_fraction=a.public_fraction,
                split_seed=a.split_seed,
                wall_seconds=a.wall_seconds,
                memory_mb=a.memory_mb,
                needs_gpu=a.needs_gpu,
                submissions_per_day=a.submissions_per_day,
                gpu_seconds_per_day=a.gpu_seconds_per_day,
                pass_rule=a.pass_rule,
                pass_baseline=a.pass_baseline.name if a.pass_baseline else None,
                pass_threshold=a.pass_threshold,
                due_at=a.due_at,
                baselines=[
                    BaselineSpec(b.name, filename, b.code, b.description)
                    for b, filename in zip(baselines, filenames, strict=True)
                ],
            )
        )
    return specs


def course_folder_export(*, course: Course, target: Path, force: bool = False) -> list[str]:
    """Write ``course`` as a folder under ``target``; return the files written.

    ``target`` must be empty or missing, unless ``force``: then its course.yaml, chapters/ and
    assignments/ are replaced and other files stay.
    """
    if target.exists() and not target.is_dir():
        raise CourseFolderError([f"{target}: not a folder"])
    if target.is_dir() and any(target.iterdir()):
        if not force:
            raise CourseFolderError([f"{target}: not empty (use --force to replace the course)"])
        # What an earlier export wrote goes, so a renamed chapter leaves no stale folder;
        # anything else (a README, .git) stays.
        (target / COURSE_FILE).unlink(missing_ok=True)
        for name in ("chapters", "assignments"):
            if (target / name).is_symlink():
                (target / name).unlink()
            elif (target / name).exists():
                shutil.rmtree(target / name)
    return course_folder_write(course_spec_from_db(course), target)
