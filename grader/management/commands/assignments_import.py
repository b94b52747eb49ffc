from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from grader.assignment_folder import AssignmentFolderError, assignment_folder_import


class Command(BaseCommand):
    help = "Import or update every assignment folder under PATH (see grader/assignment_folder.py)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args: object, path: Path, **options: object) -> None:
        folders = sorted(p.parent for p in path.glob("*/assignment.toml"))
        if not folders:
            raise CommandError(f"no */assignment.toml under {path}")
        for folder in folders:
            try:
                assignment, changed = assignment_folder_import(folder)
            except AssignmentFolderError as error:
                raise CommandError(str(error)) from None
            self.stdout.write(f"{assignment.slug}: {'updated' if changed else 'unchanged'}")
