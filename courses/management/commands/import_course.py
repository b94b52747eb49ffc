from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from courses.course_folder import CourseFolderError, course_folder_import


class Command(BaseCommand):
    help = (
        "Import or update a course from a course folder (see docs/course-format.md). "
        "All or nothing: any problem in the folder changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="the course folder (holding course.yaml)")
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would change, change nothing"
        )

    def handle(self, *args: object, path: Path, dry_run: bool, **options: object) -> None:
        try:
            course, report = course_folder_import(path, dry_run=dry_run)
        except CourseFolderError as error:
            raise CommandError(
                f"{path} was not imported; nothing changed:\n"
                + "\n".join(f"  {line}" for line in error.errors)
            ) from None
        if int(str(options.get("verbosity", 1))) >= 2 or dry_run:
            for line in report.changes:
                self.stdout.write(f"  {line}")
        prefix = "Dry run, nothing written. " if dry_run else ""
        self.stdout.write(f"{prefix}{course.slug}: {report.summary()}")
