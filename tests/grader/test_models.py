"""Invariants of assignments, baselines and runs, held by the database itself."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from grader.metrics import Direction
from grader.models import (
    LOG_MAX_CHARS,
    Assignment,
    Baseline,
    BaselineRun,
    Dataset,
    FailureReason,
    RunStatus,
    Submission,
    log_cap,
)
from tests.factories import UserFactory
from tests.grader.factories import (
    AssignmentFactory,
    BaselineFactory,
    BaselineRunFactory,
    DatasetFactory,
    SubmissionFactory,
)

pytestmark = pytest.mark.django_db


def refused(**changes):
    """Context: applying ``changes`` to a fresh submission breaks a database constraint."""
    submission = SubmissionFactory()
    for field, value in changes.items():
        setattr(submission, field, value)
    with pytest.raises(IntegrityError), transaction.atomic():
        submission.save()


# --- Submission ---------------------------------------------------------------------------------


def test_a_new_submission_is_queued_and_counts_against_the_limit():
    submission = SubmissionFactory()
    assert submission.status == RunStatus.QUEUED
    assert submission.counts_against_limit
    assert submission.queued_at is not None
    assert submission.dataset == submission.assignment.dataset


def test_a_scored_submission_has_its_scores():
    submission = SubmissionFactory(scored=True)
    assert submission.public_score == 0.9


def test_scored_without_a_score_is_refused():
    refused(status=RunStatus.SCORED, finished_at=timezone.now())


def test_scored_without_a_finish_time_is_refused():
    refused(status=RunStatus.SCORED, public_score=0.5)


def test_failed_without_a_reason_is_refused():
    refused(status=RunStatus.FAILED, finished_at=timezone.now(), message="It broke.")


def test_failed_without_an_explanation_is_refused():
    refused(
        status=RunStatus.FAILED, finished_at=timezone.now(), failure_reason=FailureReason.CRASHED
    )


def test_a_failure_reason_on_a_queued_submission_is_refused():
    refused(failure_reason=FailureReason.TIMEOUT)


def test_an_unknown_status_is_refused():
    refused(status="exploded")


def test_running_without_a_lease_is_refused():
    refused(status=RunStatus.RUNNING, started_at=timezone.now(), worker_id="gpu-1")


def test_running_with_a_lease_is_accepted():
    submission = SubmissionFactory()
    Submission.objects.filter(pk=submission.pk, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING,
        worker_id="gpu-1:1234",
        started_at=timezone.now(),
        lease_expires_at=timezone.now() + timezone.timedelta(minutes=5),
    )
    submission.refresh_from_db()
    assert submission.status == RunStatus.RUNNING


def test_an_infrastructure_failure_cannot_count_against_the_limit():
    refused(
        status=RunStatus.FAILED,
        failure_reason=FailureReason.INFRASTRUCTURE,
        message="The GPU worker disappeared.",
        finished_at=timezone.now(),
    )
    free = SubmissionFactory(
        status=RunStatus.FAILED,
        failure_reason=FailureReason.INFRASTRUCTURE,
        message="The GPU worker disappeared.",
        finished_at=timezone.now(),
        counts_against_limit=False,
    )
    assert free.get_failure_reason_display() == "Infrastructure problem"


def test_baseline_runs_share_the_constraints():
    run = BaselineRunFactory()
    run.status = RunStatus.SCORED
    run.finished_at = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        run.save()


def test_log_cap_keeps_the_end_where_the_traceback_is():
    log = "start\n" + "x" * (LOG_MAX_CHARS * 2) + "\nTraceback: ValueError at the end"
    capped = log_cap(log)
    assert len(capped) <= LOG_MAX_CHARS
    assert capped.startswith("start\n")
    assert capped.endswith("ValueError at the end")
    assert "characters cut" in capped
    assert log_cap("short") == "short"


# --- Assignment -------------------------------------------------------------------------------


def test_direction_comes_from_the_metric():
    assert AssignmentFactory(metric="accuracy").direction == Direction.HIGHER_IS_BETTER
    assert Assignment(metric="mae").direction == Direction.LOWER_IS_BETTER


def test_public_mask_is_stable_for_an_assignment():
    assignment = AssignmentFactory(public_fraction=0.25)
    mask = assignment.public_test_mask()
    assert mask.shape == (assignment.dataset.n_test,)
    assert mask.sum() == 3
    assignment.refresh_from_db()
    assert (assignment.public_test_mask() == mask).all()


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5])
def test_public_fraction_must_leave_a_public_and_a_private_part(fraction):
    assignment = AssignmentFactory()
    assignment.public_fraction = fraction
    with pytest.raises(IntegrityError), transaction.atomic():
        assignment.save()


def test_a_pass_rule_needs_its_baseline_or_threshold():
    assignment = AssignmentFactory()
    assignment.pass_rule = Assignment.PassRule.BEAT_BASELINE
    with pytest.raises(IntegrityError), transaction.atomic():
        assignment.save()
    assignment.pass_rule = Assignment.PassRule.THRESHOLD
    with pytest.raises(IntegrityError), transaction.atomic():
        assignment.save()
    assignment.pass_threshold = 0.95
    assignment.save()


def test_a_metric_must_suit_the_dataset():
    assignment = AssignmentFactory()
    assignment.metric = "mse"
    with pytest.raises(ValidationError) as caught:
        assignment.full_clean()
    assert "does not suit a classification dataset" in str(caught.value)


def test_the_pass_baseline_must_belong_to_the_assignment():
    assignment = AssignmentFactory()
    assignment.pass_rule = Assignment.PassRule.BEAT_BASELINE
    assignment.pass_baseline = BaselineFactory()
    with pytest.raises(ValidationError) as caught:
        assignment.full_clean()
    assert "pass_baseline" in caught.value.message_dict


def test_an_assignment_whose_pass_rule_names_its_baseline_can_be_deleted():
    assignment = AssignmentFactory()
    assignment.pass_baseline = BaselineFactory(assignment=assignment)
    assignment.pass_rule = Assignment.PassRule.BEAT_BASELINE
    assignment.save()
    assignment.delete()
    assert not Baseline.objects.exists()


def test_a_dataset_in_use_cannot_be_deleted():
    assignment = AssignmentFactory()
    with pytest.raises(Exception, match="protected"):
        assignment.dataset.delete()


def test_a_regression_dataset_has_no_classes():
    dataset = DatasetFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Dataset.objects.filter(pk=dataset.pk).update(task=Dataset.Task.REGRESSION)


# --- Baselines: what needs running ---------------------------------------------------------------


def test_a_new_baseline_needs_a_run_and_a_queued_run_satisfies_it():
    baseline = BaselineFactory()
    assert list(Baseline.objects.needing_run()) == [baseline]
    BaselineRunFactory(baseline=baseline)
    assert not Baseline.objects.needing_run().exists()


def test_changing_the_code_needs_a_new_run():
    run = BaselineRunFactory()
    baseline = run.baseline
    baseline.code += "# tuned\n"
    baseline.save()
    assert list(Baseline.objects.needing_run()) == [baseline]
    assert not BaselineRun.objects.current().exists()


def test_a_new_dataset_version_needs_a_new_run():
    run = BaselineRunFactory()
    assignment = run.baseline.assignment
    assignment.dataset = DatasetFactory(slug=assignment.dataset.slug, seed=99)
    assignment.save()
    assert assignment.dataset.version == 2
    assert list(Baseline.objects.needing_run()) == [run.baseline]


def test_a_cancelled_run_does_not_count_but_a_failed_one_does():
    run = BaselineRunFactory(status=RunStatus.CANCELLED)
    assert Baseline.objects.needing_run().exists()
    BaselineRunFactory(
        baseline=run.baseline,
        status=RunStatus.FAILED,
        failure_reason=FailureReason.CRASHED,
        message="ImportError: no module named sklearn",
        finished_at=timezone.now(),
    )
    assert not Baseline.objects.needing_run().exists()


def test_current_runs_are_those_of_the_current_code_and_dataset():
    old = BaselineRunFactory(status=RunStatus.SCORED, public_score=0.7, finished_at=timezone.now())
    baseline = old.baseline
    assert list(BaselineRun.objects.current()) == [old]
    baseline.code = "print('better')\n"
    baseline.save()
    new = BaselineRunFactory(baseline=baseline)
    assert list(BaselineRun.objects.current()) == [new]


# --- Admin -------------------------------------------------------------------------------------


def test_admin_never_links_or_names_the_hidden_labels(client):
    submission = SubmissionFactory(scored=True)
    run = BaselineRunFactory(baseline__assignment=submission.assignment)
    dataset = submission.dataset
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    for obj in (dataset, submission.assignment, run.baseline, run, submission):
        meta = obj._meta
        for url in (
            reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"),
            reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]),
        ):
            response = client.get(url)
            assert response.status_code == 200, url
            page = response.content.decode()
            assert dataset.test_labels_file.name not in page
            assert "datasets/hidden" not in page
    page = client.get(reverse("admin:grader_dataset_change", args=[dataset.pk])).content.decode()
    assert dataset.test_labels_sha256 in page
    assert 'href="/media/' not in page
    assert client.get(reverse("admin:grader_dataset_add")).status_code == 403
