"""Course staff's side of the grader: every submission, regrades, overrides, grades, the queue."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from lxml import html as lxml_html

from grader import staff_selectors, submissions
from grader.models import (
    FailureReason,
    Regrade,
    RunStatus,
    Submission,
    WorkerHeartbeat,
)
from grader.staff_forms import SubmissionFilterForm
from tests.factories import ChapterFactory, CourseFactory, EnrolmentFactory, UserFactory
from tests.grader.factories import (
    AssignmentFactory,
    BaselineFactory,
    BaselineRunFactory,
    DatasetFactory,
    SubmissionFactory,
)

pytestmark = pytest.mark.django_db

# The factories' test split has 12 rows labelled 0, 1, 2, 0, 1, 2, ...
PERFECT = "import numpy as np, topdown_task as tt\ntt.save_predictions(np.arange(12) % 3)\n"


@pytest.fixture
def assignment(cast):
    return AssignmentFactory(
        chapter=ChapterFactory(course=cast.course),
        slug="digits",
        submissions_per_day=2,
        wall_seconds=20,
        memory_mb=512,
    )


def scored(assignment, user, score: float, **fields) -> Submission:
    return SubmissionFactory(
        assignment=assignment,
        user=user,
        scored=True,
        public_score=score,
        private_score=score - 0.01,
        **fields,
    )


def failed(assignment, user, reason=FailureReason.CRASHED, **fields) -> Submission:
    return SubmissionFactory(
        assignment=assignment,
        user=user,
        status=RunStatus.FAILED,
        failure_reason=reason,
        message="It broke.",
        finished_at=fields.pop("finished_at", timezone.now()),
        counts_against_limit=reason != FailureReason.INFRASTRUCTURE,
        **fields,
    )


def running(assignment, user, **fields) -> Submission:
    return SubmissionFactory(
        assignment=assignment,
        user=user,
        status=RunStatus.RUNNING,
        worker_id=fields.pop("worker_id", "cpu1@worker-a"),
        started_at=fields.pop("started_at", timezone.now() - timedelta(minutes=3)),
        lease_expires_at=timezone.now() + timedelta(minutes=2),
        **fields,
    )


def list_url(assignment, **query) -> str:
    url = reverse("assignment_submissions", args=[assignment.slug])
    if query:
        url += "?" + "&".join(f"{key}={value}" for key, value in query.items())
    return url


def csv_url(assignment) -> str:
    return reverse("assignment_submissions_csv", args=[assignment.slug])


def regrade_url(assignment) -> str:
    return reverse("assignment_submissions_regrade", args=[assignment.slug])


def shown_ids(response) -> list[int]:
    """The submissions the list shows, in order: the rows' checkboxes."""
    tree = lxml_html.fromstring(response.content)
    return [int(box.get("value")) for box in tree.cssselect('input[name="submission"]')]


def read_csv(response) -> list[dict[str, str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


# --- Permissions --------------------------------------------------------------------------------


def staff_pages(assignment, submission) -> list[str]:
    return [
        list_url(assignment),
        csv_url(assignment),
        csv_url(assignment) + "?rows=submissions",
        reverse("submission_override", args=[submission.pk]),
    ]


@pytest.mark.parametrize("who", ["ta", "instructor"])
def test_course_staff_open_every_staff_page(client_for, cast, assignment, who):
    submission = scored(assignment, cast.student, 0.9)
    client = client_for(getattr(cast, who))
    for url in [*staff_pages(assignment, submission), reverse("grader_queue")]:
        assert client.get(url).status_code == 200, url


def test_a_superuser_outside_the_course_is_staff_everywhere(client_for, cast, assignment):
    submission = scored(assignment, cast.student, 0.9)
    client = client_for(UserFactory(is_superuser=True))
    for url in [*staff_pages(assignment, submission), reverse("grader_queue")]:
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("who", ["student", "other_student"])
def test_students_are_refused_every_staff_page(client_for, cast, assignment, who):
    own = scored(assignment, cast.student, 0.9)
    client = client_for(getattr(cast, who))
    for url in staff_pages(assignment, own)[:3]:
        assert client.get(url).status_code == 403, url
    # Their own submission: they may see it, not override it; another's: it does not exist.
    expected = 403 if who == "student" else 404
    assert client.get(reverse("submission_override", args=[own.pk])).status_code == expected
    assert client.get(reverse("grader_queue")).status_code == 403


def test_an_outsider_learns_nothing_about_the_assignment(client_for, cast, assignment):
    submission = scored(assignment, cast.student, 0.9)
    client = client_for(cast.outsider)
    for url in staff_pages(assignment, submission):
        assert client.get(url).status_code == 404, url
    assert client.get(reverse("grader_queue")).status_code == 403


def test_staff_of_another_course_are_outsiders_here(client_for, cast, assignment):
    submission = scored(assignment, cast.student, 0.9)
    elsewhere = UserFactory()
    EnrolmentFactory(user=elsewhere, course=CourseFactory(), role="instructor")
    client = client_for(elsewhere)
    for url in staff_pages(assignment, submission):
        assert client.get(url).status_code == 404, url
    assert client.get(reverse("grader_queue")).status_code == 200  # their own (empty) queue


def test_anonymous_visitors_are_sent_to_log_in(client, cast, assignment):
    submission = scored(assignment, cast.student, 0.9)
    for url in [*staff_pages(assignment, submission), reverse("grader_queue")]:
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response["Location"], url


@pytest.mark.parametrize("who", ["student", "other_student", "outsider"])
def test_only_staff_may_regrade_override_or_rerun(client_for, cast, assignment, who):
    submission = scored(assignment, cast.student, 0.9)
    BaselineFactory(assignment=assignment)
    client = client_for(getattr(cast, who))

    responses = [
        client.post(regrade_url(assignment), {"scope": "all"}),
        client.post(reverse("assignment_baselines_rerun", args=[assignment.slug])),
        client.post(
            reverse("submission_override", args=[submission.pk]),
            {"score": "1", "comment": "mine now"},
        ),
    ]

    assert all(response.status_code in (403, 404) for response in responses)
    submission.refresh_from_db()
    assert submission.status == RunStatus.SCORED and submission.score_override is None
    assert not Regrade.objects.exists()
    assert not assignment.baselines.get().runs.exists()


def test_the_assignment_page_links_staff_to_the_submissions_and_the_queue(
    client_for, cast, assignment
):
    staff_page = client_for(cast.ta).get(reverse("assignment_detail", args=[assignment.slug]))
    assert list_url(assignment) in staff_page.content.decode()
    assert reverse("grader_queue") in staff_page.content.decode()

    student_page = client_for(cast.student).get(
        reverse("assignment_detail", args=[assignment.slug])
    )
    assert list_url(assignment) not in student_page.content.decode()


# --- The list: filters, sorting, pagination ------------------------------------------------------


def test_the_list_shows_every_students_submissions_with_links(client_for, cast, assignment):
    mine = scored(assignment, cast.student, 0.8)
    theirs = failed(assignment, cast.other_student)
    SubmissionFactory(user=cast.student)  # another assignment's

    response = client_for(cast.ta).get(list_url(assignment))

    assert shown_ids(response) == [theirs.pk, mine.pk]
    text = response.content.decode()
    assert reverse("submission_detail", args=[mine.pk]) in text
    assert reverse("submission_detail", args=[theirs.pk]) in text
    assert f'name="submission" value="{mine.pk}"' in text  # a checkbox to select it


def test_filters_by_status(client_for, cast, assignment):
    scored(assignment, cast.student, 0.8)
    broken = failed(assignment, cast.student)

    response = client_for(cast.ta).get(list_url(assignment, status="failed"))

    assert shown_ids(response) == [broken.pk]


def test_filters_by_username_or_display_name(client_for, cast, assignment):
    cast.other_student.display_name = "Grace Hopper"
    cast.other_student.save()
    mine = scored(assignment, cast.student, 0.8)
    grace = scored(assignment, cast.other_student, 0.7)
    client = client_for(cast.ta)

    assert shown_ids(client.get(list_url(assignment, student="HOPP"))) == [grace.pk]
    assert shown_ids(client.get(list_url(assignment, student="stud"))) == [mine.pk]


def test_filters_by_score_range_using_the_score_that_counts(client_for, cast, assignment):
    low = scored(assignment, cast.student, 0.2)
    middle = scored(assignment, cast.student, 0.5)
    scored(assignment, cast.student, 0.9)
    lifted = scored(assignment, cast.other_student, 0.1)
    submissions.submission_score_override(
        submission=lifted, score=0.6, comment="Grader bug", user=cast.instructor
    )
    failed(assignment, cast.student)  # no score: never in a score range
    client = client_for(cast.ta)

    response = client.get(list_url(assignment, score_min="0.4", score_max="0.7"))
    assert set(shown_ids(response)) == {middle.pk, lifted.pk}
    assert set(shown_ids(client.get(list_url(assignment, score_max="0.3")))) == {low.pk}


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"sort": "oldest"},
        {"sort": "score_high"},
        {"sort": "score_low"},
        {"status": "scored", "sort": "score_low"},
        {"student": "o"},
        {"student": "100%_"},  # LIKE's wildcards are plain characters
        {"score_min": "0.3"},
        {"score_max": "0.55", "sort": "score_high"},
        {"student": "HOP", "score_min": "0.1", "score_max": "0.9", "status": "scored"},
    ],
)
def test_the_list_shows_the_rows_the_export_reads(client_for, cast, assignment, query):
    """The page reads its rows in plain SQL, the export through the ORM: the same filters."""
    cast.other_student.display_name = "Grace Hopper 100%_"
    cast.other_student.save()
    for score in (0.2, 0.5, 0.5, 0.8):
        scored(assignment, cast.student, score)
    lifted = scored(assignment, cast.other_student, 0.1)
    submissions.submission_score_override(
        submission=lifted, score=0.6, comment="Grader bug", user=cast.instructor
    )
    failed(assignment, cast.other_student)
    running(assignment, cast.student)
    submissions.submissions_regrade(assignment=assignment, requested_by=cast.ta)
    form = SubmissionFilterForm(query)

    shown = shown_ids(client_for(cast.ta).get(list_url(assignment, **query)))

    expected = staff_selectors.submissions_for_staff(assignment=assignment, **form.filters())
    assert shown == [submission.pk for submission in expected]


def test_a_reversed_score_range_is_an_error_not_a_filter(client_for, cast, assignment):
    scored(assignment, cast.student, 0.5)
    response = client_for(cast.ta).get(list_url(assignment, score_min="0.9", score_max="0.1"))
    assert response.status_code == 200
    assert "lowest score is above the highest" in response.content.decode()
    assert len(shown_ids(response)) == 1


def test_the_filters_show_what_was_asked_for(client_for, cast, assignment):
    client = client_for(cast.ta)
    client.get(list_url(assignment))

    tree = lxml_html.fromstring(
        client.get(list_url(assignment, status="failed", student="gra<ce")).content
    )

    assert tree.cssselect("#id_status option[selected]")[0].get("value") == "failed"
    assert tree.cssselect("#id_student")[0].get("value") == "gra<ce"
    assert not tree.cssselect(".filter-form .errorlist")


def test_sorts_by_date_and_by_score(client_for, cast, assignment):
    first = scored(assignment, cast.student, 0.5)
    second = scored(assignment, cast.student, 0.9)
    third = scored(assignment, cast.student, 0.7)
    nothing = failed(assignment, cast.student)
    client = client_for(cast.ta)

    assert shown_ids(client.get(list_url(assignment))) == [
        nothing.pk,
        third.pk,
        second.pk,
        first.pk,
    ]
    assert shown_ids(client.get(list_url(assignment, sort="oldest"))) == [
        first.pk,
        second.pk,
        third.pk,
        nothing.pk,
    ]
    # Submissions without a score come last either way.
    assert shown_ids(client.get(list_url(assignment, sort="score_high"))) == [
        second.pk,
        third.pk,
        first.pk,
        nothing.pk,
    ]
    assert shown_ids(client.get(list_url(assignment, sort="score_low"))) == [
        first.pk,
        third.pk,
        second.pk,
        nothing.pk,
    ]


def test_the_list_pages_by_fifty_and_keeps_the_filters(client_for, cast, assignment):
    for _ in range(51):
        failed(assignment, cast.student)
    scored(assignment, cast.student, 0.5)
    client = client_for(cast.ta)

    first = client.get(list_url(assignment, status="failed"))
    second = client.get(list_url(assignment, status="failed", page="2"))

    assert len(shown_ids(first)) == 50 and len(shown_ids(second)) == 1
    assert "?status=failed&amp;page=2" in first.content.decode()


def test_the_list_query_count_does_not_grow_with_the_rows(
    client_for, cast, assignment, django_assert_num_queries
):
    client = client_for(cast.ta)
    BaselineFactory(assignment=assignment)
    BaselineFactory(assignment=assignment)

    def fill(n: int) -> None:
        for i in range(n):
            student = UserFactory()
            submission = scored(assignment, student, 0.5 + i / 1000)
            submissions.submission_score_override(
                submission=submission, score=0.1, comment="x", user=cast.ta
            )
        submissions.submissions_regrade(assignment=assignment, requested_by=cast.ta)

    fill(3)
    # User, the assignment with the enrolment and the baselines, count, page.
    with django_assert_num_queries(4):
        assert client.get(list_url(assignment)).status_code == 200
    fill(30)
    # The count is kept a few seconds (the same filters: another order counts the same rows).
    with django_assert_num_queries(3):
        assert client.get(list_url(assignment, sort="score_high")).status_code == 200


# --- Regrading -----------------------------------------------------------------------------------


def broker_messages(queue: str) -> list[tuple[str, list]]:
    """(task name, args) of every message waiting in the Redis broker's ``queue``."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    messages = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        messages.append((message["headers"]["task"], args))
    return messages


@pytest.fixture
def broker():
    """The real broker (Redis); the messages a test sends are taken off again afterwards."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    before = {queue: client.llen(queue) for queue in ("cpu", "gpu")}
    yield client
    for queue, length in before.items():
        # Kombu pushes new messages on the left: keep the ``length`` oldest, on the right.
        if length:
            client.ltrim(queue, -length, -1)
        else:
            client.delete(queue)


def test_regrading_one_records_the_old_result_and_queues_it_like_a_new_one(
    cast, assignment, broker, django_capture_on_commit_callbacks
):
    submission = scored(assignment, cast.student, 0.9, worker_id="w1", device="cpu")
    other = scored(assignment, cast.student, 0.8)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outcome = submissions.submissions_regrade(
            assignment=assignment, submission_ids=[submission.pk], requested_by=cast.ta
        )
        # Nothing reaches the broker before the transaction commits.
        assert ("grader.tasks.grade_submission_task", [submission.pk]) not in broker_messages("cpu")
    for callback in callbacks:
        callback()

    assert ("grader.tasks.grade_submission_task", [submission.pk]) in broker_messages("cpu")
    [regrade] = outcome.regrades
    assert regrade.requested_by == cast.ta and regrade.previous_status == RunStatus.SCORED
    assert regrade.previous_public_score == 0.9 and regrade.previous_private_score == 0.89
    assert regrade.previous_dataset_id == submission.dataset_id
    submission.refresh_from_db()
    assert submission.status == RunStatus.QUEUED
    assert submission.public_score is None and submission.private_score is None
    assert submission.finished_at is None and submission.worker_id == "" and submission.device == ""
    assert submission.confusion_matrix == [] and submission.log == ""
    other.refresh_from_db()
    assert other.status == RunStatus.SCORED and not other.regrades.exists()


def test_a_regrade_runs_on_the_assignments_current_dataset(cast, assignment):
    submission = submissions.submission_create(
        user=cast.student, assignment=assignment, filename="main.py", content=PERFECT.encode()
    )
    submissions.submission_grade(submission_id=submission.pk, worker_id="test-worker")
    submission.refresh_from_db()
    assert submission.status == RunStatus.SCORED and submission.public_score == 1.0
    # The instructor replaces the dataset: 15 test rows, and the code predicts 12.
    assignment.dataset = DatasetFactory(n_test=15)
    assignment.save()

    submissions.submissions_regrade(
        assignment=assignment, submission_ids=[submission.pk], requested_by=cast.instructor
    )
    regraded = submissions.submission_grade(submission_id=submission.pk, worker_id="test-worker")

    assert regraded.dataset_id == assignment.dataset_id
    assert regraded.status == RunStatus.FAILED
    assert regraded.failure_reason == FailureReason.INVALID_OUTPUT
    assert regraded.regrades.get().previous_public_score == 1.0


def test_the_submission_page_names_the_dataset_a_regrade_replaced(client_for, cast, assignment):
    old_dataset = DatasetFactory(name="Digits, first cut")
    submission = scored(assignment, cast.student, 0.9)
    Regrade.objects.create(
        submission=submission,
        requested_by=cast.instructor,
        previous_status=RunStatus.SCORED,
        previous_public_score=0.8125,
        previous_dataset=old_dataset,
    )

    text = client_for(cast.student).get(reverse("submission_detail", args=[submission.pk]))

    row = text.content.decode().split('<th scope="row">Dataset</th>')[1].split("</tr>")[0]
    assert str(old_dataset) in row and str(submission.dataset) in row
    assert "0.8125" in text.content.decode()


def test_regrading_a_selection_leaves_the_rest_alone(cast, assignment):
    a = scored(assignment, cast.student, 0.5)
    b = failed(assignment, cast.other_student)
    c = scored(assignment, cast.other_student, 0.7)
    foreign = scored(AssignmentFactory(), cast.student, 0.3)

    outcome = submissions.submissions_regrade(
        assignment=assignment, submission_ids=[a.pk, b.pk, foreign.pk], requested_by=cast.ta
    )

    assert {r.submission_id for r in outcome.regrades} == {a.pk, b.pk}
    assert Regrade.objects.get(submission=b).previous_failure_reason == FailureReason.CRASHED
    statuses = dict(Submission.objects.values_list("pk", "status"))
    assert statuses[a.pk] == statuses[b.pk] == RunStatus.QUEUED
    assert statuses[c.pk] == RunStatus.SCORED and statuses[foreign.pk] == RunStatus.SCORED


def test_regrading_all_skips_running_and_cancelled_work(
    cast, assignment, django_capture_on_commit_callbacks
):
    done = scored(assignment, cast.student, 0.5)
    waiting = SubmissionFactory(assignment=assignment, user=cast.student)
    busy = running(assignment, cast.other_student)
    withdrawn = SubmissionFactory(
        assignment=assignment,
        user=cast.student,
        status=RunStatus.CANCELLED,
        finished_at=timezone.now(),
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outcome = submissions.submissions_regrade(assignment=assignment, requested_by=cast.ta)

    assert {r.submission_id for r in outcome.regrades} == {done.pk, waiting.pk}
    assert outcome.skipped_running == 1 and outcome.skipped_cancelled == 1
    assert len(callbacks) == 2
    busy.refresh_from_db()
    assert busy.status == RunStatus.RUNNING and busy.worker_id == "cpu1@worker-a"
    # A cancelled submission is regraded when picked on purpose.
    picked = submissions.submissions_regrade(
        assignment=assignment, submission_ids=[withdrawn.pk, busy.pk], requested_by=cast.ta
    )
    assert [r.submission_id for r in picked.regrades] == [withdrawn.pk]
    assert picked.skipped_running == 1


def test_a_regrade_does_not_use_up_the_students_daily_submissions(cast, assignment):
    scored(assignment, cast.student, 0.5)
    now = timezone.now()
    before = submissions.submissions_left_today(user=cast.student, assignment=assignment, now=now)

    submissions.submissions_regrade(assignment=assignment, requested_by=cast.ta)

    after = submissions.submissions_left_today(user=cast.student, assignment=assignment, now=now)
    assert before == after == 1
    submissions.submission_create(  # the student can still use the slot they had left
        user=cast.student, assignment=assignment, filename="main.py", content=PERFECT.encode()
    )


def test_staff_regrade_a_selection_from_the_list_and_see_old_and_new_scores(
    client_for, cast, assignment, django_capture_on_commit_callbacks
):
    picked = scored(assignment, cast.student, 0.8125)
    kept = scored(assignment, cast.other_student, 0.5)
    busy = running(assignment, cast.student)
    client = client_for(cast.ta)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            regrade_url(assignment),
            {
                "scope": "selected",
                "submission": [picked.pk, busy.pk],
                "next": list_url(assignment, status="scored"),
            },
            follow=True,
        )

    assert len(callbacks) == 1
    assert response.redirect_chain[-1][0] == list_url(assignment, status="scored")
    text = response.content.decode()
    assert "1 submission sent back to the queue" in text
    assert "1 running submission was not regraded" in text
    kept.refresh_from_db()
    assert kept.status == RunStatus.SCORED
    # The worker grades it again and finds a better score.
    Submission.objects.filter(pk=picked.pk).update(
        status=RunStatus.SCORED, public_score=0.9375, finished_at=timezone.now()
    )
    page = client.get(list_url(assignment)).content.decode()
    row = page.split(f'value="{picked.pk}"')[1].split("</tr>")[0]
    assert "0.8125" in row and "0.9375" in row
    detail = client_for(cast.student).get(reverse("submission_detail", args=[picked.pk]))
    detail_text = detail.content.decode()
    assert "Regraded" in detail_text and "0.8125" in detail_text and "0.9375" in detail_text


def test_regrading_every_submission_from_the_list(client_for, cast, assignment):
    for score in (0.1, 0.2, 0.3):
        scored(assignment, cast.student, score)

    response = client_for(cast.instructor).post(regrade_url(assignment), {"scope": "all"})

    assert response.status_code == 302 and response["Location"] == list_url(assignment)
    assert Regrade.objects.filter(requested_by=cast.instructor).count() == 3
    assert set(Submission.objects.values_list("status", flat=True)) == {RunStatus.QUEUED}


def test_regrading_nothing_selected_says_so(client_for, cast, assignment):
    scored(assignment, cast.student, 0.5)
    response = client_for(cast.ta).post(regrade_url(assignment), {"scope": "selected"}, follow=True)
    assert "Select at least one submission" in response.content.decode()
    assert not Regrade.objects.exists()


def test_an_unsafe_next_is_ignored(client_for, cast, assignment):
    scored(assignment, cast.student, 0.5)
    response = client_for(cast.ta).post(
        regrade_url(assignment), {"scope": "all", "next": "https://evil.example/"}
    )
    assert response["Location"] == list_url(assignment)


# --- Overrides -----------------------------------------------------------------------------------


def override_url(submission) -> str:
    return reverse("submission_override", args=[submission.pk])


def test_staff_override_a_score_with_a_comment_the_student_then_sees(client_for, cast, assignment):
    submission = scored(assignment, cast.student, 0.4)

    response = client_for(cast.ta).post(
        override_url(submission),
        {"score": "0.75", "comment": "The dataset had mislabelled rows; see the forum."},
    )

    assert response.status_code == 302
    submission.refresh_from_db()
    assert submission.score_override == 0.75 and submission.public_score == 0.4
    assert submission.overridden_by == cast.ta and submission.overridden_at is not None
    page = client_for(cast.student).get(reverse("submission_detail", args=[submission.pk]))
    text = page.content.decode()
    assert "0.7500" in text and "The dataset had mislabelled rows; see the forum." in text


def test_an_override_without_a_comment_is_refused(client_for, cast, assignment):
    submission = scored(assignment, cast.student, 0.4)

    response = client_for(cast.ta).post(override_url(submission), {"score": "1", "comment": "  "})

    assert response.status_code == 200
    assert "Say why the score is overridden" in response.content.decode()
    submission.refresh_from_db()
    assert submission.score_override is None
    with pytest.raises(ValidationError, match="comment"):
        submissions.submission_score_override(
            submission=submission, score=1.0, comment="", user=cast.ta
        )


def test_the_database_refuses_an_override_without_a_comment(cast, assignment):
    submission = scored(assignment, cast.student, 0.4)
    with pytest.raises(IntegrityError), transaction.atomic():
        Submission.objects.filter(pk=submission.pk).update(
            score_override=1.0, overridden_at=timezone.now()
        )


def test_clearing_an_override_brings_back_the_measured_score(client_for, cast, assignment):
    submission = scored(assignment, cast.student, 0.4)
    submissions.submission_score_override(
        submission=submission, score=0.9, comment="Regrade pending", user=cast.instructor
    )

    response = client_for(cast.ta).post(override_url(submission), {"action": "clear"})

    assert response.status_code == 302
    submission.refresh_from_db()
    assert submission.score_override is None and submission.override_comment == ""
    assert submission.overridden_by is None and submission.overridden_at is None


# --- Baselines -----------------------------------------------------------------------------------


def test_staff_rerun_the_baselines_and_see_each_latest_run(
    client_for, cast, assignment, django_capture_on_commit_callbacks
):
    majority = BaselineFactory(assignment=assignment, name="Majority")
    pixels = BaselineFactory(assignment=assignment, name="Pixel similarity")
    BaselineRunFactory(
        baseline=majority,
        status=RunStatus.SCORED,
        public_score=0.3333,
        finished_at=timezone.now(),
    )
    BaselineRunFactory(baseline=pixels, status=RunStatus.QUEUED)  # already on its way
    client = client_for(cast.instructor)

    page = client.get(list_url(assignment)).content.decode()
    assert "Majority" in page and "0.3333" in page and "Queued" in page

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            reverse("assignment_baselines_rerun", args=[assignment.slug]), follow=True
        )

    assert len(callbacks) == 1
    assert majority.runs.count() == 2 and pixels.runs.count() == 1
    assert majority.runs.first().status == RunStatus.QUEUED
    assert "Queued a new run of 1 baseline(s): Majority" in response.content.decode()


# --- CSV export ----------------------------------------------------------------------------------


def test_the_grade_export_has_one_line_per_student_with_the_best_score(
    client_for, cast, assignment
):
    scored(assignment, cast.student, 0.5)
    scored(assignment, cast.student, 0.7)
    failed(assignment, cast.student)
    lifted = scored(assignment, cast.other_student, 0.2)
    submissions.submission_score_override(
        submission=lifted, score=0.95, comment="Marked by hand", user=cast.instructor
    )

    rows = read_csv(client_for(cast.ta).get(csv_url(assignment)))

    by_user = {row["username"]: row for row in rows}
    assert set(by_user) == {"student", "other"}  # students only, staff are not graded
    assert by_user["student"]["submissions"] == "3" and by_user["student"]["scored"] == "2"
    assert float(by_user["student"]["best_score"]) == 0.7
    last = Submission.objects.filter(user=cast.student).latest("created_at").created_at
    assert by_user["student"]["last_submitted_at"] == timezone.localtime(last).isoformat(
        timespec="seconds"
    )
    assert float(by_user["other"]["best_score"]) == 0.95  # the override counts
    assert by_user["other"]["overridden"] == "1"
    assert "best_private_score" not in rows[0]  # no due date: the private split stays hidden


def test_students_who_never_submitted_are_in_the_export_with_no_score(client_for, cast, assignment):
    scored(assignment, cast.student, 0.5)
    rows = read_csv(client_for(cast.ta).get(csv_url(assignment)))
    other = next(row for row in rows if row["username"] == "other")
    assert other["submissions"] == "0" and other["best_score"] == ""


def test_lower_is_better_metrics_export_the_lowest_score(client_for, cast):
    regression = AssignmentFactory(chapter=ChapterFactory(course=cast.course), metric="mse")
    scored(regression, cast.student, 0.4)
    scored(regression, cast.student, 0.2)
    rows = read_csv(client_for(cast.ta).get(csv_url(regression)))
    assert float(next(r for r in rows if r["username"] == "student")["best_score"]) == 0.2


def test_the_private_best_is_exported_only_after_the_due_date(client_for, cast, assignment):
    scored(assignment, cast.student, 0.5)
    assignment.due_at = timezone.now() + timedelta(days=1)
    assignment.save()
    client = client_for(cast.ta)
    assert "best_private_score" not in read_csv(client.get(csv_url(assignment)))[0]

    assignment.due_at = timezone.now() - timedelta(minutes=1)
    assignment.save()
    rows = read_csv(client.get(csv_url(assignment)))
    assert float(next(r for r in rows if r["username"] == "student")["best_private_score"]) == 0.49


def test_the_export_defuses_spreadsheet_formulas(client_for, cast, assignment):
    tricky = {
        '=HYPERLINK("https://evil.example")': "eq",
        "+1+2": "plus",
        "-2+3": "minus",
        "@SUM(A1)": "at",
    }
    for name, username in tricky.items():
        user = UserFactory(username=username, display_name=name)
        EnrolmentFactory(user=user, course=cast.course)
        scored(assignment, user, -0.5, filename=f"{name}.py")

    grades = read_csv(client_for(cast.ta).get(csv_url(assignment)))
    rows = read_csv(client_for(cast.ta).get(csv_url(assignment) + "?rows=submissions"))

    for name, username in tricky.items():
        grade = next(row for row in grades if row["username"] == username)
        assert grade["display_name"] == "'" + name
        assert grade["best_score"] == "-0.5"  # a number stays a number
        row = next(row for row in rows if row["username"] == username)
        assert row["display_name"] == "'" + name and row["filename"] == f"'{name}.py"


def test_the_submissions_export_follows_the_lists_filters(client_for, cast, assignment):
    scored(assignment, cast.student, 0.5)
    broken = failed(assignment, cast.other_student)
    regraded = scored(assignment, cast.other_student, 0.6)
    submissions.submissions_regrade(
        assignment=assignment, submission_ids=[regraded.pk], requested_by=cast.ta
    )

    client = client_for(cast.ta)
    rows = read_csv(client.get(csv_url(assignment) + "?rows=submissions&status=failed"))
    assert [int(row["submission_id"]) for row in rows] == [broken.pk]
    assert rows[0]["failure_reason"] == "crashed"
    queued = read_csv(client.get(csv_url(assignment) + "?rows=submissions&status=queued"))
    assert float(queued[0]["score_before_last_regrade"]) == 0.6
    assert "private_score" not in rows[0]


def test_the_list_links_to_the_export_of_its_filtered_rows(client_for, cast, assignment):
    response = client_for(cast.ta).get(list_url(assignment, status="failed"))
    assert f"{csv_url(assignment)}?rows=submissions&amp;status=failed" in response.content.decode()


# --- Cancel buttons ------------------------------------------------------------------------------


def test_queued_and_running_rows_have_a_cancel_button(client_for, cast, assignment):
    waiting = SubmissionFactory(assignment=assignment, user=cast.student)
    busy = running(assignment, cast.student)
    done = scored(assignment, cast.student, 0.5)
    client = client_for(cast.ta)

    for url in (list_url(assignment), reverse("grader_queue")):
        text = client.get(url).content.decode()
        assert reverse("submission_cancel", args=[waiting.pk]) in text, url
        assert reverse("submission_cancel", args=[busy.pk]) in text, url
        assert reverse("submission_cancel", args=[done.pk]) not in text, url


def test_a_rows_cancel_button_posts_the_token_and_the_way_back(client_for, cast, assignment):
    waiting = SubmissionFactory(assignment=assignment, user=cast.student)
    back = list_url(assignment, status="queued")

    tree = lxml_html.fromstring(client_for(cast.ta).get(back).content)

    [button] = tree.cssselect("button[formaction]")
    assert button.get("formaction") == reverse("submission_cancel", args=[waiting.pk])
    form = tree.get_element_by_id(button.get("form"))
    assert form.get("method") == "post"
    assert form.cssselect("input[name=csrfmiddlewaretoken]")[0].get("value")
    assert form.cssselect("input[name=next]")[0].get("value") == back


def test_the_list_shows_a_change_to_a_row_it_showed_before(client_for, cast, assignment):
    submission = scored(assignment, cast.student, 0.4)
    client = client_for(cast.ta)
    before = client.get(list_url(assignment)).content.decode()

    submissions.submission_score_override(
        submission=submission, score=0.75, comment="Mislabelled rows", user=cast.ta
    )
    after = client.get(list_url(assignment)).content.decode()

    assert "Mislabelled rows" not in before
    assert "0.7500" in after and "Mislabelled rows" in after


def test_staff_cancel_from_the_list_and_come_back_to_it(client_for, cast, assignment):
    waiting = SubmissionFactory(assignment=assignment, user=cast.student)
    back = list_url(assignment, status="queued")

    response = client_for(cast.ta).post(
        reverse("submission_cancel", args=[waiting.pk]), {"next": back}
    )

    assert response.status_code == 302 and response["Location"] == back
    waiting.refresh_from_db()
    assert waiting.status == RunStatus.CANCELLED


# --- The queue dashboard -------------------------------------------------------------------------


@pytest.fixture
def elsewhere():
    """An assignment of a course the cast's staff do not teach."""
    return AssignmentFactory(title="Someone else's", chapter=ChapterFactory(course=CourseFactory()))


def test_the_queue_shows_running_and_queued_work_of_the_courses_taught(
    client_for, cast, assignment, elsewhere
):
    now = timezone.now()
    foreign = SubmissionFactory(assignment=elsewhere, queued_at=now - timedelta(minutes=9))
    first = SubmissionFactory(
        assignment=assignment, user=cast.student, queued_at=now - timedelta(minutes=5)
    )
    second = SubmissionFactory(
        assignment=assignment, user=cast.other_student, queued_at=now - timedelta(minutes=1)
    )
    baseline_run = BaselineRunFactory(
        baseline=BaselineFactory(assignment=assignment, name="Majority"),
        status=RunStatus.QUEUED,
        queued_at=now - timedelta(minutes=3),
    )
    busy = running(
        assignment,
        cast.student,
        worker_id="gpu0@box",
        started_at=now - timedelta(minutes=7),
    )
    gpu_work = SubmissionFactory(
        assignment=AssignmentFactory(chapter=ChapterFactory(course=cast.course), needs_gpu=True),
        user=cast.student,
        queued_at=now - timedelta(minutes=2),
    )

    response = client_for(cast.ta).get(reverse("grader_queue"))

    queued = {
        (row.submission or row.baseline_run).pk: row.position for row in response.context["queued"]
    }
    # Positions count everything ahead on the same queue, other courses' runs and baselines too.
    assert queued == {first.pk: 2, baseline_run.pk: 3, second.pk: 4, gpu_work.pk: 1}
    assert foreign.pk not in {
        row.submission.pk for row in response.context["queued"] if row.submission
    }
    [row] = response.context["running"]
    assert row.submission == busy
    text = response.content.decode()
    assert "gpu0@box" in text and "7\xa0minutes" in text
    assert "Someone else" not in text and "Majority" in text


def test_a_superuser_sees_every_courses_queue(client_for, cast, assignment, elsewhere):
    foreign = SubmissionFactory(assignment=elsewhere)
    response = client_for(UserFactory(is_superuser=True)).get(reverse("grader_queue"))
    assert [row.submission for row in response.context["queued"]] == [foreign]


def test_the_queue_counts_failures_by_reason_over_the_last_day(
    client_for, cast, assignment, elsewhere
):
    now = timezone.now()
    failed(assignment, cast.student, FailureReason.TIMEOUT, finished_at=now - timedelta(hours=1))
    failed(assignment, cast.student, FailureReason.TIMEOUT, finished_at=now - timedelta(hours=5))
    failed(assignment, cast.student, FailureReason.MEMORY, finished_at=now - timedelta(minutes=5))
    failed(assignment, cast.student, FailureReason.CRASHED, finished_at=now - timedelta(hours=30))
    failed(elsewhere, UserFactory(), FailureReason.CRASHED, finished_at=now)
    BaselineRunFactory(
        baseline=BaselineFactory(assignment=assignment),
        status=RunStatus.FAILED,
        failure_reason=FailureReason.INVALID_OUTPUT,
        message="bad shape",
        finished_at=now - timedelta(hours=2),
    )

    response = client_for(cast.ta).get(reverse("grader_queue"))

    counts = {failure.reason: failure.count for failure in response.context["failures"]}
    assert counts == {"timeout": 2, "memory": 1, "invalid_output": 1}
    timeouts = next(f for f in response.context["failures"] if f.reason == "timeout")
    assert len(timeouts.hourly) == 25 and sum(timeouts.hourly) == 2
    assert timeouts.hourly[-1] == 0 and timeouts.hourly[-2] + timeouts.hourly[-3] == 1
    text = response.content.decode()
    assert '<svg class="chart"' in text and "Ran out of time" in text


def test_the_queue_lists_live_workers_only(client_for, cast, assignment):
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        hostname="cpu1@alive", queues="cpu", started_at=now - timedelta(hours=2), last_seen_at=now
    )
    WorkerHeartbeat.objects.create(
        hostname="gpu0@gone",
        queues="gpu",
        started_at=now - timedelta(days=1),
        last_seen_at=now - timedelta(minutes=10),
    )
    running(assignment, cast.student, worker_id="cpu1@alive")

    response = client_for(cast.ta).get(reverse("grader_queue"))

    assert [(worker.hostname, n) for worker, n in response.context["workers"]] == [
        ("cpu1@alive", 1)
    ]
    assert "gpu0@gone" not in response.content.decode()


def test_the_queue_query_count_does_not_grow_with_the_rows(
    client_for, cast, assignment, django_assert_num_queries
):
    client = client_for(cast.ta)
    WorkerHeartbeat.objects.create(
        hostname="cpu1@alive", queues="cpu", started_at=timezone.now(), last_seen_at=timezone.now()
    )

    def fill(n: int) -> None:
        baseline = BaselineFactory(assignment=assignment)
        for _ in range(n):
            user = UserFactory()
            SubmissionFactory(assignment=assignment, user=user)
            running(assignment, user)
            failed(assignment, user, FailureReason.TIMEOUT)
            BaselineRunFactory(baseline=baseline, status=RunStatus.QUEUED)

    fill(2)
    # User, staff courses, submissions, baseline runs, 2 x failures, workers.
    with django_assert_num_queries(7):
        assert client.get(reverse("grader_queue")).status_code == 200
    fill(20)
    with django_assert_num_queries(7):
        assert client.get(reverse("grader_queue")).status_code == 200
