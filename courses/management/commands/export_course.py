from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from courses.course_folder import CourseFolderError, course_folder_export
from courses.models import Course


class Command(BaseCommand):
    help = "Write a course as a course folder (see docs/course-format.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="the course's slug")
        parser.add_argument("path", type=Path, help="the folder to write (empty or missing)")
        parser.add_argument(
            "--force",
            action="store_true",
            help="write into a folder that is not empty, replacing its course files",
        )

    def handle(self, *args: object, slug: str, path: Path, force: bool, **options: object) -> None:
        course = Course.objects.filter(slug=slug).first()
        if course is None:
            raise CommandError(f"no course with the slug {slug!r}")
        try:
            files = course_folder_export(course=course, target=path, force=force)
        except CourseFolderError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{course.slug}: wrote {len(files)} files to {path}")
