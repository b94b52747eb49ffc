"""Tracebacks become error signatures: the same failure groups together whoever wrote the code,
and a failed run's page says how many others hit it and where they asked."""

from __future__ import annotations

import pytest
from django.urls import reverse

from forum import services
from forum.errors import error_signature, normalise_message, run_error_of
from forum.models import ErrorOccurrence, SubmissionReport, Thread
from grader.results import last_traceback
from tests.factories import EnrolmentFactory, UserFactory
from tests.forum.conftest import CRASH_LOG, failed_submission

pytestmark = pytest.mark.django_db


def traceback_of(*frames: tuple[str, int, str], exception: str) -> str:
    lines = ["Traceback (most recent call last):"]
    for path, line, where in frames:
        lines += [f'  File "{path}", line {line}, in {where}', "    something()"]
    return "\n".join([*lines, exception]) + "\n"


def signature(log: str, reason: str = "crashed", message: str = "") -> str:
    lines = last_traceback(log)
    exception = lines[-1].text if lines and not lines[-1].frame else ""
    return error_signature(failure_reason=reason, lines=lines, exception=exception, message=message)


TORCH = "/usr/lib/python3/dist-packages/torch/nn/modules/linear.py"


def test_the_same_error_in_differently_written_code_has_one_signature():
    alice = traceback_of(
        ("/work/main.py", 14, "<module>"),
        ("/work/main.py", 9, "train"),
        (TORCH, 116, "forward"),
        exception="RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x784 and 28x10)",
    )
    bob = traceback_of(
        ("/work/main.py", 88, "<module>"),
        ("/work/main.py", 40, "fit_model"),
        ("/work/main.py", 12, "step"),
        (
            TORCH.replace(
                "/usr/lib/python3/dist-packages", "/opt/venv/lib/python3.11/site-packages"
            ),
            125,
            "forward",
        ),
        exception="RuntimeError: mat1 and mat2 shapes cannot be multiplied (128x3072 and 784x10)",
    )

    assert signature(alice) == signature(bob) != ""


def test_different_exceptions_have_different_signatures():
    base = (("/work/main.py", 3, "<module>"),)
    shape = traceback_of(*base, exception="ValueError: shapes (3,4) and (5,6) not aligned")
    missing = traceback_of(*base, exception="ModuleNotFoundError: No module named 'sklearn'")
    other_module = traceback_of(*base, exception="ModuleNotFoundError: No module named 'jax'")

    assert len({signature(shape), signature(missing), signature(other_module)}) == 3


def test_where_in_a_library_it_failed_matters():
    in_linear = traceback_of(
        ("/work/main.py", 3, "<module>"), (TORCH, 116, "forward"), exception="RuntimeError: boom"
    )
    in_conv = traceback_of(
        ("/work/main.py", 3, "<module>"),
        (TORCH.replace("linear", "conv"), 450, "_conv_forward"),
        exception="RuntimeError: boom",
    )

    assert signature(in_linear) != signature(in_conv)


def test_failures_without_a_traceback_group_by_reason_and_message():
    a = signature("", reason="timeout", message="Stopped after 600 s: the time limit.")
    b = signature("", reason="timeout", message="Stopped after 900 s: the time limit.")
    memory = signature("", reason="memory", message="Stopped after 600 s: the time limit.")

    assert a == b != memory


def test_normalising_takes_out_numbers_addresses_and_paths():
    assert (
        normalise_message(
            "FileNotFoundError: [Errno 2] No such file: '/tmp/job-81x/work/data.npz' at 0x7f3a2b"
        )
        == "FileNotFoundError: [Errno N] No such file: 'data.npz' at <address>"
    )


def test_a_scored_run_has_no_signature(cast, place):
    from tests.grader.factories import SubmissionFactory

    run = SubmissionFactory(user=cast.student, assignment=place.assignment, scored=True)

    assert run_error_of(run).signature == ""


def test_the_index_groups_failed_runs_and_skips_our_own_failures(cast, place):
    failed_submission(cast.student, place.assignment)
    failed_submission(cast.other_student, place.assignment, log=CRASH_LOG.replace("784", "3072"))
    failed_submission(
        cast.other_student,
        place.assignment,
        failure_reason="infrastructure",
        message="The worker went away.",
        counts_against_limit=False,
    )

    assert services.error_occurrences_index() == 2
    assert services.error_occurrences_index() == 0  # nothing left to do: safe to run again
    assert ErrorOccurrence.objects.values("signature").distinct().count() == 1


def test_a_regraded_run_is_indexed_again(cast, place):
    from django.utils import timezone

    run = failed_submission(cast.student, place.assignment)
    services.error_occurrences_index()
    run.log = "Traceback (most recent call last):\n  File \"/work/main.py\", line 1, in <module>\nKeyError: 'x'\n"
    run.finished_at = timezone.now()
    run.save()

    assert services.error_occurrences_index() == 1
    assert ErrorOccurrence.objects.get().exception == "KeyError: 'x'"


def test_a_failed_run_page_says_how_many_others_hit_the_error_and_where_they_asked(
    client_for, cast, place
):
    mine = failed_submission(cast.student, place.assignment)
    for index in range(3):
        classmate = UserFactory(username=f"classmate{index}")
        EnrolmentFactory(user=classmate, course=cast.course)
        failed_submission(
            classmate, place.assignment, log=CRASH_LOG.replace("784", str(100 + index))
        )
    asker = failed_submission(cast.other_student, place.assignment)
    client_for(cast.other_student).post(
        reverse("forum:ask_submission", args=[asker.pk]), {"title": "Matmul mismatch", "body": "?"}
    )
    failed_submission(
        cast.student, place.assignment, log=CRASH_LOG.replace("ValueError", "TypeError")
    )
    services.error_occurrences_index()

    page = client_for(cast.student).get(reverse("submission_detail", args=[mine.pk]))

    assert b"4 other students</strong> hit this error" in page.content
    thread = Thread.objects.get(title="Matmul mismatch")
    assert reverse("forum:thread_detail", args=[thread.pk]).encode() in page.content
    assert b"Ask on the forum" in page.content


def test_asking_opens_a_prefilled_post_with_the_error_attached(client_for, cast, place):
    run = failed_submission(cast.student, place.assignment)
    client = client_for(cast.student)

    form = client.get(reverse("forum:ask_submission", args=[run.pk]))

    assert b'value="ValueError in Digits"' in form.content
    assert b"The error is attached below" in form.content
    assert b"ValueError: matmul" in form.content and b"Device" in form.content
    assert b"numpy" in form.content  # library versions
    assert b"SECRET_CODE" not in form.content

    client.post(
        reverse("forum:ask_submission", args=[run.pk]),
        {"title": "ValueError in Digits", "body": "The error is attached below."},
    )
    thread = Thread.objects.get()
    report = SubmissionReport.objects.get()
    assert thread.assignment == place.assignment and thread.category == place.category
    assert thread.error_signature == report.signature == run_error_of(run).signature
    assert report.failure_reason == "crashed" and report.device == "cpu"
    assert "numpy" in report.libraries and "python" in report.libraries


def test_a_run_still_running_cannot_be_asked_about_yet(client_for, cast, place):
    from tests.grader.factories import SubmissionFactory

    run = SubmissionFactory(user=cast.student, assignment=place.assignment)

    response = client_for(cast.student).get(reverse("forum:ask_submission", args=[run.pk]))

    assert response.status_code == 403


def test_the_beat_task_indexes_and_is_safe_to_run_twice(cast, place):
    from forum.tasks import error_occurrences_index_task

    failed_submission(cast.student, place.assignment)

    assert error_occurrences_index_task() == 1
    assert error_occurrences_index_task() == 0
