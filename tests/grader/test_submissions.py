"""Submissions through the real pipeline: real sandbox, real PostgreSQL, scored on hidden labels."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from grader import submissions
from grader.models import BaselineRun, FailureReason, RunStatus, Submission
from tests.factories import UserFactory
from tests.grader.factories import AssignmentFactory, BaselineFactory, SubmissionFactory

pytestmark = pytest.mark.django_db

# The factories' test split has 12 rows labelled 0, 1, 2, 0, 1, 2, ...
PERFECT = "import numpy as np, topdown_task as tt\ntt.save_predictions(np.arange(12) % 3)\n"
ALL_ZERO = "import numpy as np, topdown_task as tt\ntt.save_predictions(np.zeros(12, int))\n"


@pytest.fixture
def assignment(db):
    return AssignmentFactory(wall_seconds=20, memory_mb=512, submissions_per_day=3)


def submit(assignment, code: str, filename: str = "main.py", user=None, **kw) -> Submission:
    return submissions.submission_create(
        user=user or UserFactory(),
        assignment=assignment,
        filename=filename,
        content=code.encode(),
        **kw,
    )


def grade(submission: Submission) -> Submission | None:
    return submissions.submission_grade(submission_id=submission.pk, worker_id="test-worker")


class TestCreate:
    def test_creating_a_submission_queues_it_after_commit(
        self, assignment, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            submission = submit(assignment, PERFECT)
        assert submission.status == RunStatus.QUEUED
        assert len(callbacks) == 1  # the enqueue waits for the commit

    @pytest.mark.parametrize(
        ("filename", "content", "message"),
        [
            ("model.txt", b"print(1)", "Upload a Python file"),
            ("main.py", b"\xff\xfe\x00", "not UTF-8"),
            ("main.py", b"print(1)\x00", "NUL bytes"),
            ("work.ipynb", b"{not json", "not a Jupyter notebook"),
            ("work.ipynb", b'{"nbformat": 4, "cells": []}', "no code cells"),
            ("main.py", b"#" * (1024 * 1024 + 1), "larger than"),
        ],
    )
    def test_bad_files_are_refused_with_a_reason(self, assignment, filename, content, message):
        with pytest.raises(submissions.SubmissionRefused, match=message):
            submissions.submission_create(
                user=UserFactory(), assignment=assignment, filename=filename, content=content
            )
        assert not Submission.objects.exists()

    def test_the_daily_limit_counts_only_real_attempts(self, assignment):
        user = UserFactory()
        for _ in range(2):
            submit(assignment, PERFECT, user=user)
        SubmissionFactory(
            user=user,
            assignment=assignment,
            status=RunStatus.FAILED,
            failure_reason=FailureReason.INFRASTRUCTURE,
            message="worker lost",
            finished_at=timezone.now(),
            counts_against_limit=False,
        )
        submit(assignment, PERFECT, user=user)  # the third real one is still allowed

        with pytest.raises(submissions.SubmissionRefused, match="used your 3 submissions"):
            submit(assignment, PERFECT, user=user)
        # Another student has their own allowance.
        submit(assignment, PERFECT)

    def test_yesterdays_submissions_do_not_count(self, assignment):
        user = UserFactory()
        for _ in range(3):
            submit(assignment, PERFECT, user=user)
        Submission.objects.update(created_at=timezone.now() - timedelta(days=1, minutes=1))
        submit(assignment, PERFECT, user=user)

    def test_after_the_due_date_nothing_is_accepted(self, assignment):
        assignment.due_at = timezone.now() - timedelta(minutes=1)
        assignment.save()
        with pytest.raises(submissions.SubmissionRefused, match="due date has passed"):
            submit(assignment, PERFECT)


class TestGrade:
    def test_a_correct_submission_is_scored_on_both_splits(self, assignment):
        submission = submit(assignment, PERFECT)

        graded = grade(submission)

        assert graded.status == RunStatus.SCORED, graded.message
        assert graded.public_score == 1.0 and graded.private_score == 1.0
        assert graded.worker_id == "test-worker" and graded.device == "cpu"
        assert graded.started_at <= graded.finished_at and graded.lease_expires_at is None
        assert len(graded.confusion_matrix) == 3
        assert {row["class"] for row in graded.per_class} == {"0", "1", "2"}

    def test_scores_come_from_the_hidden_labels(self, assignment):
        graded = grade(submit(assignment, ALL_ZERO))
        mask = assignment.public_test_mask()
        expected_public = float(((__import__("numpy").arange(12) % 3)[mask] == 0).mean())
        assert graded.public_score == pytest.approx(expected_public)

    def test_grading_twice_changes_nothing(self, assignment):
        submission = submit(assignment, PERFECT)
        first = grade(submission)
        finished = first.finished_at

        assert grade(submission) is None  # a duplicate delivery finds it already taken
        submission.refresh_from_db()
        assert submission.finished_at == finished and submission.attempts == 1

    def test_a_notebook_is_converted_and_scored(self, assignment):
        notebook = {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {},
            "cells": [
                {"cell_type": "code", "metadata": {}, "source": ["!pip install nothing\n"]},
                {"cell_type": "code", "metadata": {}, "source": PERFECT.splitlines(True)},
            ],
        }
        graded = grade(submit(assignment, json.dumps(notebook), filename="work.ipynb"))
        assert graded.status == RunStatus.SCORED
        assert "shell command removed: !pip install nothing" in graded.log

    @pytest.mark.parametrize(
        ("code", "reason", "says"),
        [
            (
                "print('forgot to save')\n",
                FailureReason.INVALID_OUTPUT,
                "No predictions were saved",
            ),
            (
                "import numpy as np, topdown_task as tt\ntt.save_predictions(np.zeros(5))\n",
                FailureReason.INVALID_OUTPUT,
                "expected 12 predictions",
            ),
            ("raise ValueError('my bug')\n", FailureReason.CRASHED, "my bug"),
            ("while True:\n    pass\n", FailureReason.TIMEOUT, "time limit"),
        ],
    )
    def test_failures_say_what_went_wrong(self, assignment, code, reason, says):
        assignment.wall_seconds = 3
        assignment.save()
        graded = grade(submit(assignment, code))
        assert graded.status == RunStatus.FAILED
        assert graded.failure_reason == reason
        assert says in graded.message
        assert graded.counts_against_limit  # the student's own failure counts

    def test_logged_metrics_are_kept(self, assignment):
        code = "import topdown_task as tt\ntt.log(epoch=1, loss=0.5)\n" + PERFECT
        graded = grade(submit(assignment, code))
        assert graded.metrics[0]["epoch"] == 1 and graded.metrics[0]["loss"] == 0.5


class TestReliability:
    def test_an_expired_lease_is_queued_again_without_counting(
        self, assignment, django_capture_on_commit_callbacks
    ):
        submission = submit(assignment, PERFECT)
        Submission.objects.filter(pk=submission.pk).update(
            status=RunStatus.RUNNING,
            worker_id="dead-worker",
            started_at=timezone.now() - timedelta(minutes=10),
            lease_expires_at=timezone.now() - timedelta(minutes=1),
        )

        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert submissions.graded_runs_reap() == 1

        submission.refresh_from_db()
        assert submission.status == RunStatus.QUEUED and submission.worker_id == ""
        assert submission.infrastructure_retries == 1
        assert not submission.counts_against_limit
        assert len(callbacks) == 1
        assert grade(submission).status == RunStatus.SCORED

    def test_a_live_lease_is_left_alone(self, assignment):
        submission = submit(assignment, PERFECT)
        Submission.objects.filter(pk=submission.pk).update(
            status=RunStatus.RUNNING,
            worker_id="busy-worker",
            started_at=timezone.now(),
            lease_expires_at=timezone.now() + timedelta(minutes=1),
        )
        assert submissions.graded_runs_reap() == 0

    def test_too_many_infrastructure_failures_fail_the_run(self, assignment, settings):
        settings.GRADER_MAX_INFRASTRUCTURE_RETRIES = 1
        submission = submit(assignment, PERFECT)
        Submission.objects.filter(pk=submission.pk).update(
            status=RunStatus.RUNNING,
            worker_id="dead-worker",
            started_at=timezone.now(),
            lease_expires_at=timezone.now() - timedelta(seconds=1),
            infrastructure_retries=1,
        )
        submissions.graded_runs_reap()
        submission.refresh_from_db()
        assert submission.status == RunStatus.FAILED
        assert submission.failure_reason == FailureReason.INFRASTRUCTURE
        assert not submission.counts_against_limit

    def test_a_result_from_a_worker_that_lost_its_lease_is_discarded(self, assignment):
        submission = submit(assignment, PERFECT)
        run = submissions._claim(Submission, submission.pk, "slow-worker")
        # The reaper gave the run to someone else meanwhile.
        Submission.objects.filter(pk=run.pk).update(worker_id="other-worker")
        evaluation = submissions.Evaluation(status=RunStatus.SCORED, public_score=0.1)
        assert not submissions._save_evaluation(Submission, run, "slow-worker", evaluation)
        run.refresh_from_db()
        assert run.public_score is None

    def test_queued_runs_the_broker_lost_are_sent_again(
        self, assignment, django_capture_on_commit_callbacks
    ):
        submission = submit(assignment, PERFECT)
        Submission.objects.filter(pk=submission.pk).update(
            queued_at=timezone.now() - timedelta(minutes=5)
        )
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert submissions.graded_runs_reconcile() == 1
        assert len(callbacks) == 1
        # The reminder is not repeated on the next pass.
        assert submissions.graded_runs_reconcile() == 0


class TestBaselines:
    def test_baselines_run_through_the_same_pipeline_and_are_compared(self, assignment):
        BaselineFactory(assignment=assignment, name="Majority", code=ALL_ZERO)
        BaselineFactory(assignment=assignment, name="Oracle", code=PERFECT)

        runs = submissions.baselines_run_missing(now=True)

        assert {run.status for run in runs} == {RunStatus.SCORED}
        scores = dict(submissions.baseline_scores(assignment=assignment))
        assert scores["Oracle"] == 1.0 and scores["Majority"] < 1.0
        assert submissions.baselines_run_missing(now=True) == []  # nothing left to run

    def test_changing_a_baselines_code_makes_it_run_again(self, assignment):
        baseline = BaselineFactory(assignment=assignment, code=ALL_ZERO)
        submissions.baselines_run_missing(now=True)
        baseline.code = PERFECT
        baseline.save()

        (run,) = submissions.baselines_run_missing(now=True)

        assert run.public_score == 1.0
        assert BaselineRun.objects.filter(baseline=baseline).count() == 2


def test_the_grade_command_prints_one_json_object(assignment, tmp_path, capsys):
    BaselineFactory(assignment=assignment, name="Majority", code=ALL_ZERO)
    submissions.baselines_run_missing(now=True)
    solution = tmp_path / "solution.py"
    solution.write_text(PERFECT)

    call_command("grade", assignment.slug, str(solution), "--json")

    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "scored" and result["score"] == 1.0
    assert result["metric"] == "accuracy"
    assert result["baselines"][0]["name"] == "Majority" and result["baselines"][0]["beaten"]
    assert result["device"] == "cpu" and result["duration_s"] > 0
    assert not Submission.objects.exists()  # a dry run creates no submission


class TestPages:
    @pytest.fixture
    def scored(self, assignment):
        from tests.factories import EnrolmentFactory

        student = UserFactory()
        EnrolmentFactory(user=student, course=assignment.chapter.course)
        BaselineFactory(assignment=assignment, name="Majority", code=ALL_ZERO)
        submissions.baselines_run_missing(now=True)
        submission = submit(assignment, "print('<script>x</script>')\n" + PERFECT, user=student)
        return grade(submission)

    def test_the_student_submits_a_file_and_sees_the_result(self, client, assignment, scored):
        from django.core.files.uploadedfile import SimpleUploadedFile

        client.force_login(scored.user)
        page = client.get(f"/assignments/{assignment.slug}/")
        assert page.status_code == 200 and b"Majority" in page.content

        response = client.post(
            f"/assignments/{assignment.slug}/",
            {"code_file": SimpleUploadedFile("mine.py", PERFECT.encode())},
        )
        assert response.status_code == 302
        assert Submission.objects.filter(user=scored.user).count() == 2

        result = client.get(f"/submissions/{scored.pk}/")
        assert b"beaten" in result.content
        assert b"&lt;script&gt;x&lt;/script&gt;" in result.content  # the log is escaped
        assert b"Confusion matrix" in result.content

    def test_a_wrong_file_type_is_explained_on_the_page(self, client, assignment, scored):
        from django.core.files.uploadedfile import SimpleUploadedFile

        client.force_login(scored.user)
        response = client.post(
            f"/assignments/{assignment.slug}/",
            {"code_file": SimpleUploadedFile("notes.txt", b"hello")},
        )
        assert response.status_code == 200
        assert b"Upload a Python file" in response.content

    def test_other_students_cannot_see_a_submission(self, client, assignment, scored):
        from tests.factories import EnrolmentFactory

        other = UserFactory()
        EnrolmentFactory(user=other, course=assignment.chapter.course)
        client.force_login(other)
        assert client.get(f"/submissions/{scored.pk}/").status_code == 404

    def test_outsiders_cannot_see_the_assignment(self, client, assignment, scored):
        client.force_login(UserFactory())
        assert client.get(f"/assignments/{assignment.slug}/").status_code == 403
        assert client.get(f"/submissions/{scored.pk}/").status_code == 403

    def test_course_staff_can_see_a_submission(self, client, assignment, scored):
        from courses.models import Role
        from tests.factories import EnrolmentFactory

        ta = UserFactory()
        EnrolmentFactory(user=ta, course=assignment.chapter.course, role=Role.TA)
        client.force_login(ta)
        assert client.get(f"/submissions/{scored.pk}/").status_code == 200
