from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from courses.course_folder import CourseFolderError, course_folder_import


class Command(BaseCommand):
    help = "Import or update a course from a course folder (see docs/course-folder.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args: object, path: Path, **options: object) -> None:
        try:
            course, report = course_folder_import(path)
        except CourseFolderError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"{course.slug}: {report.created} created, {report.updated} updated, "
            f"{report.deleted} deleted, {report.unchanged} unchanged"
        )
