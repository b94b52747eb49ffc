"""How a result reads: margins, the pass rule, confused classes, curves, tracebacks and hints."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from lxml import html

from grader import results
from grader.metrics import METRICS
from grader.models import Assignment, FailureReason, RunStatus
from tests.grader.factories import (
    AssignmentFactory,
    BaselineFactory,
    BaselineRunFactory,
    SubmissionFactory,
)

ACCURACY, MSE = METRICS["accuracy"], METRICS["mse"]

CRASH_LOG = """loading
Traceback (most recent call last):
  File "/work/main.py", line 12, in <module>
    model = train(x)
            ^^^^^^^^
  File "/work/main.py", line 7, in train
    return x.fit()
           ^^^^^
  File "/opt/topdown/venv/lib/python3.11/site-packages/numpy/core/fromnumeric.py", line 59, in _wrapfunc
    return bound(*args, **kwds)
AttributeError: 'numpy.ndarray' object has no attribute 'fit'
"""


def test_margins_read_in_points_for_shares_and_in_units_otherwise():
    margins = results.baseline_margins(
        metric=ACCURACY, score=0.95, baselines=[("pixel similarity", 0.808), ("linear", 0.97)]
    )
    assert [m.text for m in margins] == [
        "+14.2 points over pixel similarity",
        "\u22122.0 points behind linear",
    ]
    assert [m.beaten for m in margins] == [True, False]
    lower = results.baseline_margins(metric=MSE, score=0.25, baselines=[("mean", 0.5)])
    assert lower[0].text == "\u22120.25 over mean" and lower[0].beaten
    assert results.baseline_margins(metric=ACCURACY, score=None, baselines=[("a", 1.0)]) == []
    assert results.margin_text(ACCURACY, 0.0, "twin") == "level with twin"
    assert results.margin_text(ACCURACY, 0.01, "b") == "+1.0 point over b"


@pytest.mark.django_db
def test_the_pass_rule_by_threshold_and_by_baseline():
    threshold = AssignmentFactory(pass_rule=Assignment.PassRule.THRESHOLD, pass_threshold=0.9)
    verdict = results.pass_verdict(assignment=threshold, score=0.9, baselines=[])
    assert verdict and verdict.passed and verdict.rule == "reach at least 90.00%"
    assert not results.pass_verdict(assignment=threshold, score=0.89, baselines=[]).passed
    baseline = BaselineFactory(name="linear")
    by_baseline = baseline.assignment
    by_baseline.pass_rule, by_baseline.pass_baseline = Assignment.PassRule.BEAT_BASELINE, baseline
    verdict = results.pass_verdict(assignment=by_baseline, score=0.9, baselines=[("linear", 0.91)])
    assert verdict and not verdict.passed and verdict.rule == "beat linear (91.00%)"
    # No score for the rule's baseline yet: no verdict rather than a wrong one.
    assert results.pass_verdict(assignment=by_baseline, score=0.9, baselines=[]) is None
    assert results.pass_verdict(assignment=AssignmentFactory(), score=0.9, baselines=[]) is None


def test_the_most_confused_pairs_come_first():
    matrix = [[50, 2, 0], [9, 40, 1], [0, 9, 30]]
    pairs = results.most_confused_pairs(matrix, ["3", "5", "8"], top=2)
    # Equal counts: the larger share of its class first.
    assert [(p.true, p.predicted, p.count) for p in pairs] == [("8", "5", 9), ("5", "3", 9)]
    assert pairs[0].share == pytest.approx(9 / 39)
    assert results.most_confused_pairs([[3, 0], [0, 4]], ["a", "b"]) == []


def test_curves_per_logged_name_against_the_epoch():
    metrics = [
        {"t": 1.0, "epoch": 1, "loss": 0.9, "accuracy": 0.6},
        {"t": 2.0, "epoch": 2, "loss": 0.5},
        {"t": 3.0, "epoch": 3, "loss": 0.3, "accuracy": 0.8},
        "not a point",
    ]
    curves = results.metric_curves(metrics)
    assert [(c.name, c.x_name) for c in curves] == [("loss", "epoch"), ("accuracy", "epoch")]
    assert curves[0].points == [(1.0, 0.9), (2.0, 0.5), (3.0, 0.3)]
    assert curves[1].points == [(1.0, 0.6), (3.0, 0.8)]
    plain = results.metric_curves([{"t": 1, "loss": 2.0}, {"t": 2, "loss": 1.0}])
    assert plain[0].x_name == "logged point" and plain[0].points == [(1.0, 2.0), (2.0, 1.0)]


def test_the_traceback_marks_the_students_own_lines():
    lines = results.last_traceback(CRASH_LOG)
    mine = [line.text.strip() for line in lines if line.mine]
    assert mine == [
        'File "/work/main.py", line 12, in <module>',
        "model = train(x)",
        "^^^^^^^^",
        'File "/work/main.py", line 7, in train',
        "return x.fit()",
        "^^^^^",
    ]
    assert results.exception_line(lines).startswith("AttributeError")
    assert results.last_traceback("all went well\n") == []


@pytest.mark.parametrize(
    ("reason", "message", "exception", "expected"),
    [
        (FailureReason.TIMEOUT, "Stopped after 600 s", "", "time limit (600 s)"),
        (FailureReason.MEMORY, "Ran out of memory", "", "more than the 512 MB"),
        (FailureReason.MEMORY, "Ran out of GPU memory.", "", "smaller batch size"),
        (
            FailureReason.CRASHED,
            "Exited with code 1.",
            "ModuleNotFoundError: No module named 'sklearn.linear_model'",
            "'sklearn' is not installed",
        ),
        (
            FailureReason.INVALID_OUTPUT,
            "No predictions were saved. Write them to $TOPDOWN_OUTPUT_DIR/predictions.npy",
            "",
            "saved no predictions",
        ),
        (
            FailureReason.INVALID_OUTPUT,
            "expected 1000 rows of predictions, got 999",
            "",
            "wrong shape",
        ),
        (FailureReason.INFRASTRUCTURE, "The sandbox could not run the job", "", "our fault"),
    ],
)
def test_a_hint_for_each_common_failure(reason, message, exception, expected):
    run = SubmissionFactory.build(status=RunStatus.FAILED, failure_reason=reason, message=message)
    hint = results.failure_hint(run=run, exception=exception, memory_mb=512, wall_seconds=600)
    assert expected in hint


def page(client, submission):
    response = client.get(reverse("submission_detail", args=[submission.pk]))
    assert response.status_code == 200
    return html.fromstring(response.content)


@pytest.mark.django_db
def test_a_scored_submission_shows_its_margins_confusions_and_curves(cast, client):
    assignment = AssignmentFactory(chapter__course=cast.course)
    for name, score in (("pixel similarity", 0.5), ("linear model", 0.9)):
        BaselineRunFactory(
            baseline=BaselineFactory(assignment=assignment, name=name),
            status=RunStatus.SCORED,
            public_score=score,
            finished_at=timezone.now(),
        )
    submission = SubmissionFactory(
        user=cast.student,
        assignment=assignment,
        scored=True,
        public_score=0.75,
        confusion_matrix=[[5, 1, 0], [3, 4, 0], [0, 0, 6]],
        per_class=[
            {"class": str(i), "support": 6, "precision": 0.5, "recall": 0.5, "f1": 0.5}
            for i in range(3)
        ],
        metrics=[{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.4}],
        log="training\n",
    )
    client.force_login(cast.student)
    tree = page(client, submission)
    text = tree.text_content()
    assert "75.00%" in text
    margins = [li.text_content() for li in tree.cssselect(".margin-list li")]
    assert margins == [
        "\u221215.0 points behind linear model",
        "+25.0 points over pixel similarity",
    ]
    assert tree.cssselect(".confusion-figure svg rect.chart-cell-off")
    pairs = [li.text_content() for li in tree.cssselect(".confused-pairs li")]
    assert pairs[0].startswith("1 taken for 0: 3 times")
    assert tree.cssselect(".curve-grid svg polyline.chart-line")
    assert not tree.cssselect("[data-live-run]")  # finished: no polling


@pytest.mark.django_db
def test_a_regraded_run_shows_its_new_figures(cast, client):
    submission = SubmissionFactory(
        user=cast.student,
        assignment=AssignmentFactory(chapter__course=cast.course),
        scored=True,
        public_score=0.5,
        confusion_matrix=[[5, 1], [3, 4]],
        metrics=[{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.4}],
    )
    client.force_login(cast.student)
    before = page(client, submission)

    # Graded again: other figures in the same row.
    type(submission).objects.filter(pk=submission.pk).update(
        confusion_matrix=[[6, 0], [1, 6]],
        metrics=[{"epoch": 1, "loss": 0.7}, {"epoch": 2, "loss": 0.2}],
    )
    after = page(client, submission)

    def pairs(tree):
        return [li.text_content() for li in tree.cssselect(".confused-pairs li")]

    def last_loss(tree):
        return tree.cssselect(".curve-grid figcaption")[0].text_content()

    assert pairs(before)[0].startswith("1 taken for 0: 3 times")
    assert pairs(after)[0].startswith("1 taken for 0: 1 time ")
    assert last_loss(before).endswith("last 0.4000") and last_loss(after).endswith("last 0.2000")


@pytest.mark.django_db
def test_a_failed_submission_explains_itself(cast, client):
    submission = SubmissionFactory(
        user=cast.student,
        assignment=AssignmentFactory(chapter__course=cast.course),
        status=RunStatus.FAILED,
        failure_reason=FailureReason.CRASHED,
        message="Exited with code 1.",
        finished_at=timezone.now(),
        log=CRASH_LOG,
    )
    client.force_login(cast.student)
    tree = page(client, submission)
    assert [span.text_content().strip() for span in tree.cssselect(".traceback .tb-mine")][:2] == [
        'File "/work/main.py", line 12, in <module>',
        "model = train(x)",
    ]
    assert (
        "highlighted lines of the traceback are yours" in tree.cssselect(".hint")[0].text_content()
    )


@pytest.mark.django_db
def test_a_running_submission_polls_and_offers_a_cancel(cast, client):
    submission = SubmissionFactory(
        user=cast.student,
        assignment=AssignmentFactory(chapter__course=cast.course),
        status=RunStatus.RUNNING,
        worker_id="worker-1",
        started_at=timezone.now(),
        lease_expires_at=timezone.now(),
        log="<script>alert(1)</script>\n",
    )
    client.force_login(cast.student)
    response = client.get(reverse("submission_detail", args=[submission.pk]))
    assert b"<script>alert(1)" not in response.content
    tree = html.fromstring(response.content)
    panel = tree.cssselect("[data-live-run]")[0]
    assert panel.get("data-status-url") == reverse("submission_status", args=[submission.pk])
    assert tree.cssselect("[data-live-log]")[0].text_content() == "<script>alert(1)</script>\n"
    form = tree.cssselect("form.live-cancel")[0]
    assert form.get("action") == reverse("submission_cancel", args=[submission.pk])


def test_durations_read_in_the_largest_sensible_unit():
    start = timezone.now()
    assert results.format_duration(start, start + timedelta(seconds=4.24)) == "4.2 s"
    assert results.format_duration(start, start + timedelta(seconds=185)) == "3 min 5 s"
    assert results.format_duration(start, start + timedelta(minutes=62)) == "1 h 2 min"
    assert results.format_duration(start, None) == ""


@pytest.mark.django_db
def test_the_result_page_queries_do_not_grow_with_baselines_or_classes(cast, client):
    def scored(classes: int, baselines: int):
        assignment = AssignmentFactory(chapter__course=cast.course)
        for i in range(baselines):
            BaselineRunFactory(
                baseline=BaselineFactory(assignment=assignment, name=f"baseline {i}"),
                status=RunStatus.SCORED,
                public_score=0.5,
                finished_at=timezone.now(),
            )
        return SubmissionFactory(
            user=cast.student,
            assignment=assignment,
            scored=True,
            confusion_matrix=[[1] * classes for _ in range(classes)],
            metrics=[{"epoch": 1, "loss": 0.5}],
        )

    client.force_login(cast.student)
    small, large = scored(classes=2, baselines=1), scored(classes=10, baselines=5)
    client.get(reverse("submission_detail", args=[small.pk]))  # warm the session
    counts = []
    for submission in (small, large):
        with CaptureQueriesContext(connection) as queries:
            client.get(reverse("submission_detail", args=[submission.pk]))
        counts.append(len(queries))
    # The user; the submission with its assignment, course, the viewer's enrolment, its latest
    # regrade and the baselines' scores.
    assert counts == [2, 2], counts
