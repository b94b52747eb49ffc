"""Seed the deadline-burst and faults benchmarks' database (their own, on their own server).

    DJANGO_SETTINGS_MODULE=benchmarks.settings DATABASE_URL=... REDIS_URL=... \
        python -m benchmarks.seed_burst --out FILE [--submitters 300] [--browsers 200]

Run by ``benchmarks/burst.py`` and ``benchmarks/faults.py`` after ``migrate``. Loads what
``make run`` loads (``demo_load``: the built-in datasets, the demo course and its assignment),
then adds:

- the benchmark's assignment, ``burst-digits``, in the chapter "under the hood", on the built-in
  8x8 digits (1,437 training and 360 test images: each run takes a fraction of a second), with
  no daily submission limit (a deadline burst must not be refused by it), 60 s and 1 GB per run;
- ``--submitters`` and ``--browsers`` students, enrolled, each with a session made the way
  Django's test client logs in (a form login costs a PBKDF2 hash each), and the instructor;
- a forum thread in the chapter's category with 30 posts, for the browsers to read.

Writes to ``--out`` as JSON what the load needs: the paths, and each student's session key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

COURSE = "practical-deep-learning"
CHAPTER = "under-the-hood"
ASSIGNMENT = "burst-digits"
DATASET = "digits8x8"
THREAD_POSTS = 30

STARTER = '''"""Nearest centroid on the 8x8 digits."""

import numpy as np
import topdown_task as tt

x_train, y_train = tt.load("train")
x_test = tt.load("test_inputs")
x_train = x_train.reshape(len(x_train), -1).astype(np.float32)
x_test = x_test.reshape(len(x_test), -1).astype(np.float32)
centroids = np.stack([x_train[y_train == digit].mean(axis=0) for digit in range(10)])
distances = ((x_test[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
tt.save_predictions(distances.argmin(axis=1))
'''


def seed(submitters: int, browsers: int) -> dict[str, object]:
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import User
    from courses.access import course_access_for_user
    from courses.models import Chapter, Course, Enrolment, Role
    from forum import services as forum_services
    from forum.access import thread_get_for_user
    from forum.models import Category
    from grader.models import Assignment, Dataset

    call_command("demo_load", verbosity=0)
    course = Course.objects.get(slug=COURSE)
    chapter = Chapter.objects.get(course=course, slug=CHAPTER)
    dataset = Dataset.objects.filter(slug=DATASET).order_by("-version").first()
    if dataset is None:
        raise SystemExit(f"the built-in dataset {DATASET} is missing after demo_load")
    assignment = Assignment.objects.create(
        chapter=chapter,
        slug=ASSIGNMENT,
        title="Deadline burst: the 8x8 digits",
        position=99,
        description="Classify the 8x8 digits. Benchmark assignment: no daily limit.",
        starter_code=STARTER,
        dataset=dataset,
        wall_seconds=60,
        memory_mb=1024,
        submissions_per_day=0,
    )

    instructor = User.objects.create_user(
        username="burst-instructor", password=None, display_name="Burst Instructor"
    )
    Enrolment.objects.create(user=instructor, course=course, role=Role.INSTRUCTOR)
    names = [f"burst-s{i:04d}" for i in range(submitters)] + [
        f"burst-b{i:04d}" for i in range(browsers)
    ]
    User.objects.bulk_create(
        [User(username=name, display_name=f"Student {name[-5:]}", password="!") for name in names],
        batch_size=1000,
    )
    users = list(User.objects.filter(username__in=names))
    Enrolment.objects.bulk_create(
        [Enrolment(user=user, course=course, role=Role.STUDENT) for user in users],
        batch_size=1000,
    )

    forum_services.categories_sync(course=course)
    category = Category.objects.get(course=course, chapter=chapter)
    access = course_access_for_user(user=instructor, course_slug=course.slug)
    thread = forum_services.thread_create(
        author=instructor,
        access=access,
        category=category,
        title="Deadline tonight: questions about the 8x8 digits",
        body="Post your questions about the burst assignment here. **Read the whole thread** "
        "before asking: centroids, neighbours and a `softmax` have been discussed.",
    )
    thread_access = thread_get_for_user(user=instructor, thread_id=thread.pk, reply=True)
    for number in range(2, THREAD_POSTS + 1):
        forum_services.post_reply_create(
            author=instructor,
            thread_access=thread_access,
            body=f"Reply {number}: normalise the pixels (they count ink from 0 to 16), then "
            "compare the nearest centroid with a 3-nearest-neighbours vote.\n\n"
            "```python\nx = x.reshape(len(x), -1) / 16\n```",
        )

    sessions = {}
    for user in [instructor, *users]:
        client = Client()
        client.force_login(user)
        sessions[user.username] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return {
        "course": course.slug,
        "chapter_path": f"/courses/{course.slug}/chapters/{chapter.slug}/",
        "chapter_title": chapter.title,
        "assignment": assignment.slug,
        "assignment_id": assignment.pk,
        "assignment_path": f"/assignments/{assignment.slug}/",
        "leaderboard_path": f"/assignments/{assignment.slug}/leaderboard/",
        "thread_path": f"/forum/threads/{thread.pk}/",
        "thread_title": thread.title,
        "thread_posts": THREAD_POSTS,
        "dataset": {"slug": dataset.slug, "n_train": dataset.n_train, "n_test": dataset.n_test},
        "submitters": [n for n in names if n.startswith("burst-s")],
        "browsers": [n for n in names if n.startswith("burst-b")],
        "instructor": instructor.username,
        "sessions": sessions,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--submitters", type=int, default=300)
    parser.add_argument("--browsers", type=int, default=200)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    django.setup()
    args.out.write_text(json.dumps(seed(args.submitters, args.browsers), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
