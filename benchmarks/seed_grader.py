"""Seed the grader pages' benchmark: 10,000 students and 200,000 submissions of one assignment.

    DJANGO_SETTINGS_MODULE=benchmarks.settings DATABASE_URL=... \
        python -m benchmarks.seed_grader --out FILE [--students 10000] [--per-student 20]

Run by ``benchmarks/pages.py`` on its own database after ``migrate``. Loads the demo course, the
built-in datasets and the demo assignment (``mnist-ten-digits``) through their commands, then
bulk-inserts the students, their enrolments and their submissions: 90% scored (scores spread
around the baselines, a 10x10 confusion matrix and per-class figures on the public split, ten
logged metric points, a short log), 10% failed with a traceback, a few queued. The reader (whose
pages are measured) has a running submission too, for the live status endpoint. Writes what the
benchmark needs (usernames, ids, paths) as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
from datetime import timedelta
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SLUG = "mnist-ten-digits"
BATCH = 5_000
CLASSES = 10
CRASH_LOG = (
    "loading the data\nTraceback (most recent call last):\n"
    '  File "/work/main.py", line 14, in <module>\n    model = train(x_train)\n'
    "ValueError: shapes (8000,784) and (28,10) not aligned\n"
)


def _scored_fields(rng: random.Random, score: float) -> dict[str, object]:
    per_class_total = 100
    matrix = []
    for i in range(CLASSES):
        right = min(
            per_class_total, max(0, round(per_class_total * (score + rng.uniform(-0.05, 0.05))))
        )
        row = [0] * CLASSES
        row[i] = right
        for _ in range(per_class_total - right):
            row[rng.randrange(CLASSES)] += 1
        matrix.append(row)
    per_class = [
        {"class": str(i), "support": 100, "precision": score, "recall": score, "f1": score}
        for i in range(CLASSES)
    ]
    metrics = [
        {
            "t": 1.0 + epoch,
            "epoch": epoch,
            "loss": 1.5 / epoch,
            "accuracy": score * (1 - 0.3 / epoch),
        }
        for epoch in range(1, 11)
    ]
    log = "".join(f"epoch {m['epoch']} loss {m['loss']:.3f}\n" for m in metrics)
    return {"confusion_matrix": matrix, "per_class": per_class, "metrics": metrics, "log": log}


def seed(students: int, per_student: int) -> dict[str, object]:
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from courses.models import Enrolment, Role
    from grader.models import Assignment, BaselineRun, RunStatus, Submission

    call_command("demo_load", verbosity=0)  # the built-in datasets, the course, its assignment
    assignment = Assignment.objects.select_related("chapter__course").get(slug=SLUG)
    course = assignment.chapter.course
    now = timezone.now()
    rng = random.Random(20261126)

    baselines = {"Pixel similarity": 0.808, "Linear model": 0.887}
    for baseline in assignment.baselines.all():
        BaselineRun.objects.create(
            baseline=baseline,
            dataset=assignment.dataset,
            code=baseline.code,
            filename=baseline.filename,
            code_sha256=hashlib.sha256(baseline.code.encode()).hexdigest(),
            status=RunStatus.SCORED,
            public_score=baselines.get(baseline.name, 0.85),
            private_score=baselines.get(baseline.name, 0.85) - 0.004,
            started_at=now - timedelta(days=3, seconds=5),
            finished_at=now - timedelta(days=3),
        )

    password = make_password("bench-password")
    users = [
        User(username=f"bstudent{i:05d}", display_name=f"Student {i:05d}", password=password)
        for i in range(students)
    ]
    User.objects.bulk_create(users, batch_size=BATCH)
    users = list(User.objects.filter(username__startswith="bstudent").order_by("username"))
    Enrolment.objects.bulk_create(
        [Enrolment(user=user, course=course, role=Role.STUDENT) for user in users],
        batch_size=BATCH,
        ignore_conflicts=True,
    )
    instructor = User.objects.create(
        username="binstructor", display_name="Bench Instructor", password=password
    )
    Enrolment.objects.create(user=instructor, course=course, role=Role.INSTRUCTOR)

    code = "import numpy as np, topdown_task as tt\n# a student's model\n" + "x = 1\n" * 40
    batch: list[Submission] = []
    created = 0
    for index, user in enumerate(users):
        for n in range(per_student):
            when = now - timedelta(days=2, minutes=per_student - n, seconds=index % 60)
            fields: dict[str, object] = {
                "user": user,
                "assignment": assignment,
                "dataset": assignment.dataset,
                "code": code,
                "filename": "main.py",
                "queued_at": when,
                "started_at": when + timedelta(seconds=2),
                "worker_id": "bench-worker",
                "device": "cpu",
                "attempts": 1,
            }
            roll = rng.random()
            if roll < 0.9:
                score = min(0.995, max(0.1, rng.gauss(0.86 + 0.004 * n, 0.04)))
                fields.update(
                    status=RunStatus.SCORED,
                    public_score=round(score, 4),
                    private_score=round(min(0.999, score + rng.uniform(-0.01, 0.01)), 4),
                    finished_at=when + timedelta(seconds=30),
                    message=f"Scored accuracy {score:.4f} on the public test split.",
                    **_scored_fields(rng, score),
                )
            else:
                fields.update(
                    status=RunStatus.FAILED,
                    failure_reason="crashed",
                    message="Exited with code 1.",
                    finished_at=when + timedelta(seconds=3),
                    log=CRASH_LOG,
                )
            batch.append(Submission(**fields))
            if len(batch) >= BATCH:
                Submission.objects.bulk_create(batch)
                created += len(batch)
                batch = []
    Submission.objects.bulk_create(batch)
    created += len(batch)
    # What autovacuum does to a table this size within minutes: statistics for the planner and
    # the visibility map that index-only scans need.
    with connection.cursor() as cursor:
        for table in ("grader_submission", "accounts_user", "courses_enrolment"):
            cursor.execute(f"VACUUM ANALYZE {table}")

    reader = users[0]
    running = Submission.objects.create(
        user=reader,
        assignment=assignment,
        dataset=assignment.dataset,
        code=code,
        filename="main.py",
        status=RunStatus.RUNNING,
        worker_id="bench-worker",
        started_at=now,
        lease_expires_at=now + timedelta(days=1),  # no reaper runs during the benchmark
        log="".join(f"epoch {i} loss {1 / i:.3f}\n" for i in range(1, 200)),
        metrics=[{"epoch": i, "loss": 1 / i} for i in range(1, 200)],
    )
    result = (
        Submission.objects.filter(user=reader, assignment=assignment, status=RunStatus.SCORED)
        .order_by("-public_score")
        .values_list("pk", flat=True)
        .first()
    )
    return {
        "assignment_slug": SLUG,
        "reader": reader.username,
        "instructor": instructor.username,
        "result_submission": result,
        "running_submission": running.pk,
        "running_log_length": len(running.log),
        "running_metrics": len(running.metrics),
        "counts": {
            "students": len(users),
            "submissions": Submission.objects.filter(assignment=assignment).count(),
            "scored": Submission.objects.filter(
                assignment=assignment, status=RunStatus.SCORED
            ).count(),
        },
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--students", type=int, default=10_000)
    parser.add_argument("--per-student", type=int, default=20)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    django.setup()
    args.out.write_text(json.dumps(seed(args.students, args.per_student), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
