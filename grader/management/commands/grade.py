from __future__ import annotations

import json
import uuid
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from grader.models import Assignment, CodeKind
from grader.pipeline import evaluate
from grader.submissions import SubmissionRefused, baseline_scores, code_kind_for


class Command(BaseCommand):
    help = (
        "Run a .py or .ipynb through the exact grading pipeline of an assignment (sandbox, "
        "scoring, baselines) without creating a submission: the instructor's dry run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("assignment_slug")
        parser.add_argument("path", type=Path)
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--time-limit", type=float, help="seconds (default: the assignment's)")
        parser.add_argument("--memory-limit", type=int, help="MB (default: the assignment's)")

    def handle(self, *args: object, **options: object) -> None:
        slug = str(options["assignment_slug"])
        path = Path(str(options["path"]))
        try:
            assignment = Assignment.objects.select_related("dataset").get(slug=slug)
        except Assignment.DoesNotExist:
            raise CommandError(f"no assignment with slug {slug!r}") from None
        try:
            kind = code_kind_for(path.name)
            code = path.read_text(encoding="utf-8")
        except (SubmissionRefused, OSError, UnicodeDecodeError) as error:
            raise CommandError(str(error)) from None
        stream = not options["json"]
        evaluation = evaluate(
            assignment=assignment,
            dataset=assignment.dataset,
            code=code,
            kind=kind or CodeKind.PY,
            job_id=f"dry-run-{uuid.uuid4().hex[:8]}",
            wall_seconds=options["time_limit"],  # type: ignore[arg-type]
            memory_mb=options["memory_limit"],  # type: ignore[arg-type]
            on_log=(lambda line: self.stdout.write(f"  | {line}")) if stream else None,
        )
        metric = assignment.metric_spec
        baselines = [
            {
                "name": name,
                "score": score,
                "beaten": evaluation.public_score is not None
                and metric.better(evaluation.public_score, than=score),
            }
            for name, score in baseline_scores(assignment=assignment)
        ]
        result = {
            "status": evaluation.status,
            "failure_reason": evaluation.failure_reason or None,
            "message": evaluation.message,
            "score": evaluation.public_score,
            "private_score": evaluation.private_score,
            "metric": metric.name,
            "baselines": baselines,
            "duration_s": round(evaluation.duration_s, 3),
            "device": evaluation.device,
            "degraded_sandbox": evaluation.degraded,
            "log_tail": evaluation.log[-4000:],
        }
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"{evaluation.status}: {evaluation.message}")
        for baseline in baselines:
            verdict = "beaten" if baseline["beaten"] else "not beaten"
            self.stdout.write(f"  baseline {baseline['name']}: {baseline['score']:.4f} ({verdict})")
