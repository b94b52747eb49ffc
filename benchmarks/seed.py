"""Seed the benchmark database: 1 course, 10 chapters, 1,000 students and 100,000 graded answers.

Run by ``benchmarks/web.py`` with ``DJANGO_SETTINGS_MODULE=benchmarks.settings`` against the
dedicated ``topdown_bench`` database, never against a database anyone else uses::

    python -m benchmarks.seed seed --out FILE        # fill an empty, migrated database
    python -m benchmarks.seed force-login USER...    # print session keys for these users

Chapters, questionnaires and their questions come from the demo course (parsed, not imported, so
the demo folder's rules stay the only source); chapters 4 to 10 are copies with new slugs.
Everything bulk-inserted and seeded from a fixed random seed, so every run measures the same data.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import django

if TYPE_CHECKING:
    from courses.course_folder import QuestionSpec
    from courses.models import Question

STUDENTS = 1_000
CHAPTERS = 10
ATTEMPTS_PER_STUDENT = 10
# Ten questions per questionnaire, every kind represented: 1,000 x 10 x 10 = 100,000 answers.
QUESTION_QUOTA = {
    "single": 2,
    "multiple": 2,
    "true_false": 2,
    "numeric": 2,
    "short_text": 1,
    "free_text": 1,
}
# Throwaway accounts in a throwaway database.
PASSWORD = "bench-password-not-a-secret"
COURSE_SLUG = "bench-deep-learning"
# The student whose pages are measured, and the students who take turns submitting: 256 of them,
# so each makes a handful of new attempts, as a class would, rather than one student thousands.
READER = "student0001"
SUBMITTERS = [f"student{n:04d}" for n in range(2, 2 + 256)]
RANDOM_SEED = 20_240_601


@dataclass(frozen=True)
class CannedAnswer:
    """One response to a question, with the form fields that post it and its precomputed grade."""

    response: object
    form_values: list[str]
    score: Decimal | None
    is_correct: bool | None
    feedback: str


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    django.setup()


def _pick_questions(specs: list[QuestionSpec], quota: dict[str, int]) -> list[QuestionSpec]:
    """The first questions of each kind up to the quota, in the questionnaire's own order."""
    left = dict(quota)
    picked = []
    for spec in specs:
        if left.get(spec.kind, 0) > 0:
            picked.append(spec)
            left[spec.kind] -= 1
    if any(left.values()):
        raise SystemExit(f"demo questionnaire lacks questions for {left}")
    return picked


def _canned_answers(question: Question) -> tuple[CannedAnswer, CannedAnswer]:
    """A right and a wrong answer to ``question``, graded by the app's own grader."""
    from courses.grading import grade_answer, points_for
    from courses.models import Question

    kind = question.kind
    choices = list(question.choices.all())
    right_ids = [c.id for c in choices if c.is_correct]
    wrong_ids = [c.id for c in choices if not c.is_correct]
    if kind == Question.Kind.SINGLE:
        pairs = [([right_ids[0]], [str(right_ids[0])]), ([wrong_ids[0]], [str(wrong_ids[0])])]
    elif kind == Question.Kind.MULTIPLE:
        partly = [right_ids[0], wrong_ids[0]]
        pairs = [(right_ids, [str(i) for i in right_ids]), (partly, [str(i) for i in partly])]
    elif kind == Question.Kind.TRUE_FALSE:
        truth = bool(question.correct_boolean)
        pairs = [(truth, [str(truth).lower()]), (not truth, [str(not truth).lower()])]
    elif kind == Question.Kind.NUMERIC:
        right = float(question.numeric_answer)
        wrong = right * 1.5 + 1
        pairs = [(right, [repr(right)]), (wrong, [repr(wrong)])]
    elif kind == Question.Kind.SHORT_TEXT:
        right_text = (question.accepted_answers or ["?"])[0]
        pairs = [(right_text, [right_text]), ("no idea", ["no idea"])]
    else:
        text = (
            "The test set was used to choose settings, so it leaked into the model and the "
            "score is optimistic; decisions belong on a validation set, the test set is used once."
        )
        pairs = [(text, [text]), ("Not sure.", ["Not sure."])]
    canned = []
    for response, form_values in pairs:
        grade = grade_answer(question, response)
        canned.append(
            CannedAnswer(
                response=response,
                form_values=form_values,
                score=points_for(grade.fraction, question.points),
                is_correct=grade.is_correct,
                feedback=grade.feedback,
            )
        )
    return canned[0], canned[1]


def seed() -> dict[str, object]:
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import User
    from courses.course_folder import course_folder_parse
    from courses.models import (
        Answer,
        Attempt,
        Chapter,
        Choice,
        Course,
        Enrolment,
        Question,
        Questionnaire,
        Role,
    )

    if Course.objects.exists() or User.objects.exists():
        raise SystemExit("seed expects an empty, freshly migrated database")
    rng = random.Random(RANDOM_SEED)
    now = timezone.now()
    demo = course_folder_parse(Path(__file__).resolve().parent.parent / "demo" / "course")

    with transaction.atomic():
        course = Course.objects.create(
            slug=COURSE_SLUG, title=demo.title, description=demo.description
        )
        chapters, questionnaires = [], []
        for index in range(CHAPTERS):
            base = demo.chapters[index % len(demo.chapters)]
            part = index // len(demo.chapters) + 1
            suffix = "" if part == 1 else f"-part-{part}"
            # Distinct text per chapter, so no chapter rides on another's markdown cache entry.
            intro = "" if part == 1 else f"*Part {part}: the same ideas again, with new eyes.*\n\n"
            chapters.append(
                Chapter(
                    course=course,
                    slug=f"{base.slug}{suffix}",
                    title=base.title if part == 1 else f"{base.title} (part {part})",
                    body=intro + base.body,
                    position=index,
                )
            )
        Chapter.objects.bulk_create(chapters)
        for index, chapter in enumerate(chapters):
            spec = demo.chapters[index % len(demo.chapters)].questionnaire
            questionnaires.append(
                Questionnaire(
                    chapter=chapter,
                    title=spec.title,
                    max_attempts=0,  # unlimited, so the submit benchmark never runs out
                    counts=spec.counts,
                    reveal=spec.reveal,
                    late=spec.late,
                )
            )
        Questionnaire.objects.bulk_create(questionnaires)

        questions, choices = [], []
        for index, questionnaire in enumerate(questionnaires):
            spec = demo.chapters[index % len(demo.chapters)].questionnaire
            for position, q in enumerate(_pick_questions(spec.questions, QUESTION_QUOTA)):
                question = Question(
                    questionnaire=questionnaire,
                    key=q.key,
                    position=position,
                    kind=q.kind,
                    prompt=q.prompt,
                    explanation=q.explanation,
                    points=q.points,
                    correct_boolean=q.correct_boolean,
                    numeric_answer=q.numeric_answer,
                    tolerance=q.tolerance,
                    tolerance_mode=q.tolerance_mode,
                    accepted_answers=q.accepted_answers,
                    answer_regex=q.answer_regex,
                    reference_answer=q.reference_answer,
                )
                questions.append(question)
                choices.extend(
                    Choice(question=question, position=i, text=c.text, is_correct=c.correct)
                    for i, c in enumerate(q.choices)
                )
        Question.objects.bulk_create(questions)
        Choice.objects.bulk_create(choices)

        # One hash for everyone: hashing 1,000 passwords would take minutes and prove nothing.
        password_hash = make_password(PASSWORD)
        users = User.objects.bulk_create(
            User(
                username=f"student{n:04d}",
                display_name=f"Student {n}",
                email=f"student{n:04d}@example.com",
                password=password_hash,
            )
            for n in range(1, STUDENTS + 1)
        )
        Enrolment.objects.bulk_create(
            Enrolment(user=user, course=course, role=Role.STUDENT) for user in users
        )

        by_questionnaire = {
            q.id: list(q.questions.prefetch_related("choices"))
            for q in Questionnaire.objects.filter(chapter__course=course)
        }
        canned = {
            question.id: _canned_answers(question)
            for qs in by_questionnaire.values()
            for question in qs
        }
        max_scores = {
            q_id: sum((q.points for q in qs), Decimal("0")) for q_id, qs in by_questionnaire.items()
        }

        # Students work more on early chapters: chapter k is picked with weight CHAPTERS - k.
        weights = [CHAPTERS - k for k in range(CHAPTERS)]
        attempts, planned_answers = [], []
        for user in users:
            picks = sorted(rng.choices(range(CHAPTERS), weights=weights, k=ATTEMPTS_PER_STUDENT))
            numbers: dict[int, int] = {}
            for chapter_index in picks:
                questionnaire = questionnaires[chapter_index]
                number = numbers.get(questionnaire.id, 0) + 1
                numbers[questionnaire.id] = number
                # Later attempts at the same questionnaire tend to go better.
                skill = min(0.95, rng.uniform(0.3, 0.8) + 0.1 * (number - 1))
                chosen = [
                    canned[question.id][0 if rng.random() < skill else 1]
                    for question in by_questionnaire[questionnaire.id]
                ]
                attempt = Attempt(
                    questionnaire=questionnaire,
                    user=user,
                    token=uuid.uuid4(),
                    number=number,
                    status=Attempt.Status.SUBMITTED,
                    score=sum((c.score or Decimal("0") for c in chosen), Decimal("0")),
                    max_score=max_scores[questionnaire.id],
                    submitted_at=now - timedelta(days=60) + timedelta(minutes=len(attempts)),
                )
                attempts.append(attempt)
                planned_answers.append(
                    list(zip(by_questionnaire[questionnaire.id], chosen, strict=True))
                )
        Attempt.objects.bulk_create(attempts, batch_size=2_000)
        Answer.objects.bulk_create(
            (
                Answer(
                    attempt=attempt,
                    question=question,
                    response=answer.response,
                    score=answer.score,
                    is_correct=answer.is_correct,
                    feedback=answer.feedback,
                )
                for attempt, pairs in zip(attempts, planned_answers, strict=True)
                for question, answer in pairs
            ),
            batch_size=5_000,
        )

    # Fresh planner statistics, as a long-running database would have.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")

    measured = chapters[0]
    reader = next(u for u in users if u.username == READER)
    measured_questions = by_questionnaire[questionnaires[0].id]
    # A plausible submission: mostly right, one wrong, the way a student's second try looks.
    submit_fields: list[list[str]] = []
    for position, question in enumerate(measured_questions):
        answer = canned[question.id][1 if position == 3 else 0]
        submit_fields.extend([f"q_{question.id}", value] for value in answer.form_values)
    submit_fields.append(["submit", "1"])
    return {
        "course_slug": course.slug,
        "chapter_slugs": [c.slug for c in chapters],
        "measured_chapter": {"slug": measured.slug, "title": measured.title},
        "question_ids": [q.id for q in measured_questions],
        "reader": READER,
        "reader_attempts_on_measured_chapter": Attempt.objects.filter(
            user=reader, questionnaire=questionnaires[0]
        ).count(),
        "submitters": SUBMITTERS,
        "password": PASSWORD,
        "submit_fields": submit_fields,
        "counts": {
            "students": Enrolment.objects.filter(course=course, role=Role.STUDENT).count(),
            "chapters": Chapter.objects.filter(course=course).count(),
            "questions": Question.objects.count(),
            "attempts": Attempt.objects.count(),
            "answers": Answer.objects.count(),
        },
    }


def force_login(usernames: list[str]) -> dict[str, str]:
    """Session keys for ``usernames``, made the way Django's test client logs users in.

    For the submitters (a login through the form costs each a PBKDF2 hash), and for the reader
    when the login page cannot be used: the pages measured do not depend on it.
    """
    from django.conf import settings
    from django.test import Client

    from accounts.models import User

    sessions = {}
    for username in usernames:
        client = Client()
        client.force_login(User.objects.get(username=username))
        sessions[username] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return sessions


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    seed_parser = commands.add_parser("seed")
    seed_parser.add_argument("--out", type=Path, required=True)
    login_parser = commands.add_parser("force-login")
    login_parser.add_argument("usernames", nargs="+")
    args = parser.parse_args(argv)

    _setup_django()
    if args.command == "seed":
        args.out.write_text(json.dumps(seed(), indent=2))
    else:
        print(json.dumps(force_login(args.usernames)))


if __name__ == "__main__":
    main(sys.argv[1:])
