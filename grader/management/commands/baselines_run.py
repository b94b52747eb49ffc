from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from grader.submissions import baselines_run_missing


class Command(BaseCommand):
    help = "Run every baseline that has no result for its current code and dataset version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--now", action="store_true", help="grade here and now instead of queueing for workers"
        )

    def handle(self, *args: object, now: bool, **options: object) -> None:
        runs = baselines_run_missing(now=now)
        if not runs:
            self.stdout.write("Every baseline has a result for its current code and dataset.")
        for run in runs:
            score = f" {run.public_score:.4f}" if run.public_score is not None else ""
            self.stdout.write(
                f"{run.baseline.assignment.slug} / {run.baseline.name}: {run.status}{score}"
            )
