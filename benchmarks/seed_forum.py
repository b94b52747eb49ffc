"""Seed the forum benchmark: 100,000 threads and 1,000,000 posts in one course's forum.

    DJANGO_SETTINGS_MODULE=benchmarks.settings DATABASE_URL=... \
        python -m benchmarks.seed_forum --out FILE [--threads 100000] [--posts 1000000]

Run by ``benchmarks/forum.py`` on its own database after ``migrate``. Loads the demo course (its
chapters give the categories), then writes everything else with PostgreSQL's COPY: 2,000
students, the threads spread over the course's categories, and the posts, whose search vectors
PostgreSQL computes while moving them from a staging table (title weight A on opening posts, body
weight B, and the course and id-block markers, as ``forum.indexing`` does); the categories' thread
counts are counted once the threads are in. One thread in the measured chapter has exactly 500
posts. Post text is made of a vocabulary of deep-learning words and made-up words with a Zipf-like
frequency, about 50 words a post, a tenth with a fenced code block; ``body_html`` is what
``topdown.markdown`` renders for it (checked on a sample). The GIN index is built after the load.
Writes what the benchmark needs (usernames, paths, queries) as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import timedelta
from itertools import accumulate
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SEED = 20261126
STUDENTS = 2_000
LONG_THREAD_POSTS = 500
COURSE = "practical-deep-learning"
MEASURED_CHAPTER = "first-model"
TERMS = (  # noqa: SIM905 - a paragraph of words reads better than a column of strings
    "gradient loss learning rate batch epoch tensor model layer weights bias activation relu "
    "sigmoid softmax dropout overfitting underfitting validation training test accuracy "
    "precision recall optimizer adam momentum convolution kernel stride padding pooling "
    "embedding attention transformer encoder decoder token vocabulary sequence recurrent lstm "
    "normalisation batchnorm layernorm initialisation regularisation weight decay augmentation "
    "dataset dataloader shuffle label logits probability entropy crossentropy backpropagation "
    "derivative chain rule matrix vector shape dimension broadcast cuda gpu memory device "
    "checkpoint scheduler warmup cosine plateau divergence nan exploding vanishing residual "
    "skip connection pretrained finetune transfer feature classifier regression mnist digits "
    "pixel image channel numpy pytorch python notebook traceback error mismatch"
).split()
SYLLABLES = "ka lo mi ne ru sa te vi zo da fe gu hi jo pe qua ri so tu we xi ya".split()  # noqa: SIM905
SNIPPETS = [
    "loss = criterion(model(x), y)\nloss.backward()\noptimizer.step()",
    "x = x.view(x.size(0), -1)\nlogits = self.fc(x)",
    "for epoch in range(10):\n    train_one_epoch(model, loader)",
    "predictions = logits.argmax(dim=1)\naccuracy = (predictions == y).float().mean()",
]


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    django.setup()


class Words:
    """A vocabulary with Zipf-like frequencies: the deep-learning terms are the common words."""

    def __init__(self, rng: random.Random, size: int = 6_000) -> None:
        made_up: set[str] = set()
        while len(made_up) < size - len(TERMS):
            made_up.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
        # Half the terms are the most common words; the other half mix in with made-up ones.
        head, tail = TERMS[: len(TERMS) // 2], TERMS[len(TERMS) // 2 :] + sorted(made_up)
        rng.shuffle(tail)
        self.words = head + tail
        self.cumulative = list(accumulate(1 / (rank + 10) for rank in range(len(self.words))))
        self.rng = rng

    def pick(self, k: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cumulative, k=k)

    def text(self, low: int, high: int) -> str:
        return " ".join(self.pick(self.rng.randint(low, high)))


def _copy(cursor: object, table: str, columns: list[str], rows: object) -> None:
    raw = cursor.cursor  # type: ignore[attr-defined]  # psycopg's own cursor, under Django's
    with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:  # type: ignore[attr-defined]
            copy.write_row(row)


def seed(threads: int, posts: int) -> dict[str, object]:
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from courses.models import Course, Enrolment, Role
    from forum.indexing import LEVELS, course_marker
    from forum.models import Category, Thread
    from forum.services import categories_sync, category_thread_counts_refresh
    from topdown.markdown import render_markdown

    started = time.monotonic()
    call_command("demo_load", verbosity=0)
    course = Course.objects.get(slug=COURSE)
    categories_sync(course=course)
    categories = list(Category.objects.filter(course=course).select_related("chapter"))
    measured = next(c for c in categories if c.chapter and c.chapter.slug == MEASURED_CHAPTER)
    rng = random.Random(SEED)
    words = Words(rng)
    now = timezone.now()

    password = make_password("bench-password")
    User.objects.bulk_create(
        [
            User(username=f"fstudent{i:05d}", display_name=f"Student {i:05d}", password=password)
            for i in range(STUDENTS)
        ],
        batch_size=5_000,
    )
    users = list(
        User.objects.filter(username__startswith="fstudent")
        .order_by("username")
        .values_list("id", flat=True)
    )
    Enrolment.objects.bulk_create(
        [Enrolment(user_id=user_id, course=course, role=Role.STUDENT) for user_id in users],
        batch_size=5_000,
    )
    reader_id = users[0]

    # How many posts each thread gets: 500 for the long one, the rest spread around the mean.
    counts = [LONG_THREAD_POSTS]
    left, left_threads = posts - LONG_THREAD_POSTS, threads - 1
    for index in range(left_threads):
        remaining_threads = left_threads - index
        if remaining_threads == 1:
            n = left
        else:
            mean = left / remaining_threads
            n = max(1, min(left - (remaining_threads - 1), int(rng.expovariate(1 / mean)) + 1))
        counts.append(n)
        left -= n
    assert sum(counts) == posts and len(counts) == threads

    snippet_html = {s: render_markdown(f"```python\n{s}\n```") for s in SNIPPETS}
    thread_rows: list[tuple[object, ...]] = []
    span = timedelta(days=365).total_seconds()
    checked = 0

    def post_rows():  # streamed into COPY: a million rows need not sit in memory
        nonlocal checked
        post_id = 0
        for index, count in enumerate(counts):
            thread_id = index + 1
            category = measured if index == 0 or rng.random() < 0.1 else rng.choice(categories)
            author = reader_id if index == 0 else rng.choice(users)
            title = words.text(4, 9).capitalize()
            if index == 0:
                title = "Why does my loss plateau after the first epoch"
            start = now - timedelta(seconds=rng.uniform(3_600, span))
            created, last_author = start, author
            for number in range(1, count + 1):
                post_id += 1
                poster = author if number == 1 else rng.choice(users)
                body = words.text(20, 80).capitalize() + "."
                html = f"<p>{body}</p>\n"
                if rng.random() < 0.1:
                    snippet = rng.choice(SNIPPETS)
                    body = f"{body}\n\n```python\n{snippet}\n```"
                    html += snippet_html[snippet]
                if post_id % 5_000 == 1:
                    assert render_markdown(body) == html, f"post {post_id} renders differently"
                    checked += 1
                created = created + timedelta(seconds=rng.uniform(30, 3_600))
                last_author = poster
                yield (
                    post_id,
                    thread_id,
                    number,
                    poster,
                    body,
                    html,
                    created,
                    title if number == 1 else "",
                )
            pinned = index > 0 and index % 997 == 0  # a few pinned threads, as in real forums
            thread_rows.append(
                (
                    thread_id,
                    course.id,
                    category.id,
                    author,
                    title,
                    "",
                    False,
                    pinned,
                    False,
                    None,
                    count,
                    created,
                    last_author,
                    start,
                    created,
                )
            )

    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("DROP INDEX IF EXISTS forum_post_search")
        cursor.execute(
            "CREATE UNLOGGED TABLE bench_post_staging (id bigint, thread_id bigint, number int, "
            "author_id bigint, body text, body_html text, created_at timestamptz, title text)"
        )
        _copy(
            cursor,
            "bench_post_staging",
            ["id", "thread_id", "number", "author_id", "body", "body_html", "created_at", "title"],
            post_rows(),
        )
        _copy(
            cursor,
            "forum_thread",
            [
                "id",
                "course_id",
                "category_id",
                "author_id",
                "title",
                "error_signature",
                "is_hidden",
                "is_pinned",
                "is_locked",
                "accepted_post_id",
                "post_count",
                "last_posted_at",
                "last_poster_id",
                "created_at",
                "updated_at",
            ],
            thread_rows,
        )
        copied = time.monotonic() - started
        cursor.execute(
            """
            INSERT INTO forum_post (id, thread_id, number, author_id, body, body_html,
                contains_answer, is_hidden, like_count, edit_count, search_vector, created_at,
                updated_at)
            SELECT id, thread_id, number, author_id, body, body_html, false, false, 0, 0,
                setweight(to_tsvector('english', title), 'A')
                    || setweight(to_tsvector('english', body), 'B')
                    || array_to_tsvector(ARRAY[%s, {block_markers}]),
                created_at, created_at
            FROM bench_post_staging ORDER BY id
            """.format(
                # forum.indexing.post_markers, in SQL: the course's and the id's blocks.
                block_markers=", ".join(f"%s || (id >> {shift})" for _, shift in LEVELS)
            ),
            # "C12", then "C12P" || (id >> 12), ...: as block_marker(course, letter, block).
            [course_marker(course.id), *(f"{course_marker(course.id)}{ch}" for ch, _ in LEVELS)],
        )
        cursor.execute("DROP TABLE bench_post_staging")
        category_thread_counts_refresh(category_ids=[category.pk for category in categories])
        indexed = time.monotonic() - started
        cursor.execute("CREATE INDEX forum_post_search ON forum_post USING gin (search_vector)")
        for table in ("forum_thread", "forum_post"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        # Likes on the long thread, some by the reader: the page shows them.
        cursor.execute(
            """
            INSERT INTO forum_postlike (post_id, user_id, created_at)
            SELECT p.id, u.id, now() FROM forum_post p
            JOIN LATERAL (SELECT id FROM accounts_user WHERE username LIKE 'fstudent%'
                          ORDER BY id OFFSET (p.number % 7) + 1 LIMIT (p.number % 4)) u ON true
            WHERE p.thread_id = 1
            """
        )
        cursor.execute(
            "UPDATE forum_post p SET like_count = (SELECT count(*) FROM forum_postlike l "
            "WHERE l.post_id = p.id) WHERE p.thread_id = 1"
        )
        for table in (
            "forum_thread",
            "forum_post",
            "forum_postlike",
            "accounts_user",
            "courses_enrolment",
            "forum_category",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")
    loaded = time.monotonic() - started

    # The reader has read the long thread and visited the category before: reading writes nothing.
    from forum.models import CategoryVisit, ThreadRead, Watch

    ThreadRead.objects.create(user_id=reader_id, thread_id=1, last_read_number=LONG_THREAD_POSTS)
    Watch.objects.create(user_id=reader_id, thread_id=1)
    CategoryVisit.objects.create(
        user_id=reader_id,
        category=measured,
        visited_at=now,
        previous_visited_at=now - timedelta(days=2),
    )
    reader = User.objects.get(pk=reader_id)
    long_thread = Thread.objects.get(pk=1)

    # Search queries as students type them: one or two of the words posts use, common ones
    # (the deep-learning terms) and rarer ones.
    queries = []
    for index in range(200):
        if index % 2:
            queries.append(" ".join(rng.sample(TERMS, 2)))
        else:
            queries.append(rng.choice(words.words[len(TERMS) : len(TERMS) + 2_000]))
    return {
        "course_slug": course.slug,
        "chapter_slug": MEASURED_CHAPTER,
        "reader": reader.username,
        "long_thread": long_thread.pk,
        "long_thread_title": long_thread.title,
        "long_thread_pages": -(-LONG_THREAD_POSTS // 20),
        "queries": queries,
        "rendering_checked": checked,
        "seconds": {
            "generate_and_copy": round(copied, 1),
            "vectors": round(indexed, 1),
            "total": round(loaded, 1),
        },
        "counts": {
            "students": STUDENTS,
            "threads": Thread.objects.count(),
            "posts": connection.cursor().execute("SELECT count(*) FROM forum_post").fetchone()[0],
            "categories": len(categories),
            "measured_category_threads": Thread.objects.filter(category=measured).count(),
            "long_thread_posts": long_thread.post_count,
        },
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--posts", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    _setup_django()
    args.out.write_text(json.dumps(seed(args.threads, args.posts), indent=2, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
