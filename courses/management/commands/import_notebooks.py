from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from courses.models import Course
from courses.notebook_import import NotebookImportResult, chapters_import_from_notebooks
from courses.notebooks import NotebookError, ParsedNotebook, notebook_parse


def notebook_paths(paths: list[Path]) -> list[Path]:
    """Files as given; folders as every ``*.ipynb`` inside them (not recursively), sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.glob("*.ipynb") if p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise CommandError(f"{path}: no such file or folder")
    return found


class Command(BaseCommand):
    help = (
        "Import Jupyter notebooks as chapters: title, body, '## Questionnaire' items as "
        "free-text questions and '### Further Research' items as draft assignments. "
        "Importing a notebook again updates its chapter in place."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
        parser.add_argument("--course", required=True, help="Slug of the course to import into.")
        parser.add_argument("--dry-run", action="store_true", help="Report, write nothing.")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="One JSON object per notebook."
        )

    def handle(
        self,
        *args: object,
        paths: list[Path],
        course: str,
        dry_run: bool,
        as_json: bool,
        **options: object,
    ) -> None:
        try:
            target = Course.objects.get(slug=course)
        except Course.DoesNotExist:
            raise CommandError(f"no course with the slug {course!r}") from None
        readouts: list[ParsedNotebook | NotebookImportResult] = []
        for path in notebook_paths(paths):
            try:
                readouts.append(notebook_parse(path.read_bytes(), name=str(path)))
            except (NotebookError, OSError) as error:
                readouts.append(NotebookImportResult(notebook=str(path), error=str(error)))
        imported = iter(
            chapters_import_from_notebooks(
                course=target,
                notebooks=[r for r in readouts if isinstance(r, ParsedNotebook)],
                dry_run=dry_run,
            )
        )
        # In the order given, unreadable notebooks included.
        results = [r if isinstance(r, NotebookImportResult) else next(imported) for r in readouts]
        for result in results:
            self.stdout.write(self._json(result) if as_json else self._line(result, dry_run))
        errors = [r for r in results if r.error]
        if errors:
            raise CommandError(f"{len(errors)} of {len(results)} notebooks not imported")

    def _json(self, result: NotebookImportResult) -> str:
        return json.dumps(result.as_dict(), ensure_ascii=False)

    def _line(self, result: NotebookImportResult, dry_run: bool) -> str:
        if result.error:
            return self.style.ERROR(f"{result.notebook}: not imported: {result.error}")
        action = "new" if result.created else "updated" if result.updated else "unchanged"
        prefix = "would import" if dry_run else "imported"
        line = (
            f"{result.notebook}: {prefix} “{result.title}” as {result.chapter} ({action}), "
            f"{result.questions} questions, {result.further_research} further research"
        )
        for skip in result.skipped:
            line += f"\n  skipped {skip['what']}: {skip['why']}"
        return line
