"""A student's submissions over time, and the diff between the code of two of them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from grader.history import code_diff
from grader.models import CodeKind, FailureReason, RunStatus, Submission
from tests.grader.factories import (
    AssignmentFactory,
    BaselineFactory,
    BaselineRunFactory,
    SubmissionFactory,
)

pytestmark = pytest.mark.django_db

OLD_CODE = "import numpy as np\n\ndef predict(x):\n    return np.zeros(len(x))\n\nprint('done')\n"
NEW_CODE = "import numpy as np\n\ndef predict(x):\n    return np.ones(len(x))\n\nprint('done')\n"


@pytest.fixture
def assignment(cast):
    return AssignmentFactory(
        chapter=cast.questionnaire.chapter, due_at=timezone.now() + timedelta(days=3)
    )


def submit(assignment, user, code: str = OLD_CODE, minutes_ago: int = 0, **fields) -> Submission:
    submission = SubmissionFactory(assignment=assignment, user=user, code=code, **fields)
    Submission.objects.filter(pk=submission.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    submission.refresh_from_db()
    return submission


def scored(assignment, user, public: float, private: float, **kwargs) -> Submission:
    return submit(
        assignment,
        user,
        status=RunStatus.SCORED,
        public_score=public,
        private_score=private,
        finished_at=timezone.now(),
        **kwargs,
    )


def notebook(*cells: str) -> str:
    return json.dumps(
        {
            "cells": [
                {
                    "cell_type": "code",
                    "source": source,
                    "metadata": {"collapsed": index % 2 == 0},
                    "outputs": [{"output_type": "stream", "name": "stdout", "text": "noise\n"}],
                    "execution_count": index,
                }
                for index, source in enumerate(cells)
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def history_url(assignment, student=None) -> str:
    url = reverse("assignment_history", args=[assignment.slug])
    return f"{url}?student={student}" if student else url


class TestHistoryPage:
    def test_every_submission_newest_first_with_status_score_and_reason(
        self, client, cast, assignment
    ):
        first = scored(assignment, cast.student, 0.6125, 0.1, minutes_ago=30)
        failed = submit(
            assignment,
            cast.student,
            minutes_ago=20,
            status=RunStatus.FAILED,
            failure_reason=FailureReason.TIMEOUT,
            message="Ran out of time.",
            finished_at=timezone.now(),
        )
        latest = scored(assignment, cast.student, 0.8375, 0.1, minutes_ago=10)
        scored(assignment, cast.other_student, 0.9999, 0.1)
        client.force_login(cast.student)

        html = client.get(history_url(assignment)).content.decode()

        links = [reverse("submission_detail", args=[s.pk]) for s in (latest, failed, first)]
        positions = [html.index(f'href="{link}"') for link in links]
        assert positions == sorted(positions)
        assert "0.8375" in html and "0.6125" in html
        assert "Ran out of time" in html  # the failure reason
        assert "0.9999" not in html  # another student's work

    def test_the_score_chart_shows_the_baselines(self, client, cast, assignment):
        run = BaselineRunFactory(
            baseline=BaselineFactory(assignment=assignment, name="Pixel similarity"),
            status=RunStatus.SCORED,
            public_score=0.7,
            private_score=0.7,
            finished_at=timezone.now(),
        )
        scored(assignment, cast.student, 0.6, 0.1, minutes_ago=30)
        scored(assignment, cast.student, 0.8, 0.1, minutes_ago=10)
        client.force_login(cast.student)

        html = client.get(history_url(assignment)).content.decode()

        assert "<svg" in html and 'class="chart-line' in html
        assert 'class="chart-marker-label"' in html and run.baseline.name in html

    def test_the_private_score_appears_only_after_the_due_date(self, client, cast, assignment):
        scored(assignment, cast.student, 0.6, 0.3717)
        client.force_login(cast.student)

        before = client.get(history_url(assignment)).content.decode()
        assignment.due_at = timezone.now() - timedelta(minutes=1)
        assignment.save()
        after = client.get(history_url(assignment)).content.decode()

        assert "0.3717" not in before and "Private score" not in before
        assert "0.3717" in after

    def test_staff_see_any_students_history(self, client, cast, assignment):
        scored(assignment, cast.student, 0.6125, 0.1)
        client.force_login(cast.ta)

        response = client.get(history_url(assignment, "student"))

        assert response.status_code == 200
        assert "0.6125" in response.content.decode()
        assert cast.student.public_name in response.content.decode()

    def test_a_student_cannot_see_another_students_history(self, client, cast, assignment):
        scored(assignment, cast.other_student, 0.6125, 0.1)
        client.force_login(cast.student)

        response = client.get(history_url(assignment, "other"))

        assert response.status_code == 404

    def test_naming_their_own_username_is_fine(self, client, cast, assignment):
        client.force_login(cast.student)

        assert client.get(history_url(assignment, "student")).status_code == 200

    def test_staff_cannot_name_someone_outside_the_students(self, client, cast, assignment):
        client.force_login(cast.ta)

        assert client.get(history_url(assignment, "outsider")).status_code == 404
        assert client.get(history_url(assignment, "instructor")).status_code == 404

    def test_the_outsider_is_refused(self, client, cast, assignment):
        client.force_login(cast.outsider)

        assert client.get(history_url(assignment)).status_code == 403

    @pytest.mark.parametrize("count", [2, 12])
    def test_the_page_makes_a_fixed_number_of_queries(
        self, client, cast, assignment, count, django_assert_num_queries
    ):
        for index in range(count):
            scored(assignment, cast.student, index / 20, 0.1, minutes_ago=count - index)
        client.force_login(cast.student)

        # user; the assignment with the enrolment; the submissions; the baselines
        with django_assert_num_queries(4):
            assert client.get(history_url(assignment)).status_code == 200


class TestPickingTwo:
    def test_the_form_sends_you_to_the_diff(self, client, cast, assignment):
        old = submit(assignment, cast.student, OLD_CODE, minutes_ago=10)
        new = submit(assignment, cast.student, NEW_CODE)
        client.force_login(cast.student)

        response = client.get(history_url(assignment), {"old": old.pk, "new": new.pk})

        assert response.status_code == 302
        assert response["Location"] == reverse("submission_diff", args=[old.pk, new.pk])

    def test_the_form_offers_only_the_students_own_submissions(self, client, cast, assignment):
        mine = submit(assignment, cast.student, minutes_ago=10)
        submit(assignment, cast.student)
        theirs = submit(assignment, cast.other_student)
        client.force_login(cast.student)

        response = client.get(history_url(assignment), {"old": theirs.pk, "new": mine.pk})

        assert response.status_code == 200
        assert "Select a valid choice" in response.content.decode()


class TestDiff:
    def test_the_unified_diff_shows_removed_and_added_lines(self, client, cast, assignment):
        old = submit(assignment, cast.student, OLD_CODE, minutes_ago=10)
        new = submit(assignment, cast.student, NEW_CODE)
        client.force_login(cast.student)

        html = client.get(reverse("submission_diff", args=[old.pk, new.pk])).content.decode()

        assert "1 line added, 1 removed" in html
        assert "removed: </span>    return np.zeros(len(x))" in html
        assert "added: </span>    return np.ones(len(x))" in html
        assert 'class="diff-code diff-removed"' in html and 'class="diff-code diff-added"' in html

    def test_the_side_by_side_diff_pairs_the_changed_lines(self, client, cast, assignment):
        old = submit(assignment, cast.student, OLD_CODE, minutes_ago=10)
        new = submit(assignment, cast.student, NEW_CODE + "print('more')\n")
        client.force_login(cast.student)

        html = client.get(
            reverse("submission_diff", args=[old.pk, new.pk]) + "?layout=split"
        ).content.decode()

        assert 'aria-current="page">Side by side' in html
        assert "print(&#x27;more&#x27;)" in html
        assert 'class="diff-code diff-empty"' in html  # nothing on the left of the new line

    def test_identical_code_says_so(self, client, cast, assignment):
        old = submit(assignment, cast.student, OLD_CODE, minutes_ago=10)
        new = submit(assignment, cast.student, OLD_CODE)
        client.force_login(cast.student)

        html = client.get(reverse("submission_diff", args=[old.pk, new.pk])).content.decode()

        assert "No changes" in html

    def test_notebooks_are_compared_as_the_script_the_grader_runs(self, cast, assignment):
        old = submit(
            assignment,
            cast.student,
            notebook("import numpy as np", "x = 1\nprint(x)"),
            code_kind=CodeKind.IPYNB,
            filename="work.ipynb",
        )
        new = submit(
            assignment,
            cast.student,
            notebook("import numpy as np", "x = 2\nprint(x)"),
            code_kind=CodeKind.IPYNB,
            filename="work.ipynb",
        )

        diff = code_diff(old=old, new=new)

        changed = [(line.kind, line.text) for hunk in diff.hunks for line in hunk.lines]
        assert ("removed", "x = 1") in changed and ("added", "x = 2") in changed
        assert not any("execution_count" in text or "noise" in text for _, text in changed)
        assert (diff.added, diff.removed) == (1, 1)
        assert any("notebook" in note for note in diff.notes)

    def test_hunks_keep_three_lines_of_context_and_number_the_lines(self, cast, assignment):
        lines = [f"line_{n} = {n}" for n in range(1, 21)]
        changed = [*lines[:9], "line_10 = 'ten'", *lines[10:]]
        old = submit(assignment, cast.student, "\n".join(lines) + "\n")
        new = submit(assignment, cast.student, "\n".join(changed) + "\n")

        diff = code_diff(old=old, new=new)

        (hunk,) = diff.hunks
        assert hunk.header == "@@ -7,7 +7,7 @@"
        assert [line.old_number for line in hunk.lines] == [7, 8, 9, 10, None, 11, 12, 13]
        assert [line.new_number for line in hunk.lines] == [7, 8, 9, None, 10, 11, 12, 13]
        assert len(hunk.rows) == 7  # side by side: the changed line faces its replacement

    def test_another_students_submission_is_a_404(self, client, cast, assignment):
        mine = submit(assignment, cast.student)
        theirs = submit(assignment, cast.other_student)
        client.force_login(cast.student)

        assert client.get(reverse("submission_diff", args=[mine.pk, theirs.pk])).status_code == 404
        assert client.get(reverse("submission_diff", args=[theirs.pk, mine.pk])).status_code == 404

    def test_staff_cannot_compare_two_students_work(self, client, cast, assignment):
        mine = submit(assignment, cast.student)
        theirs = submit(assignment, cast.other_student)
        client.force_login(cast.instructor)

        assert client.get(reverse("submission_diff", args=[mine.pk, theirs.pk])).status_code == 404

    def test_staff_can_compare_one_students_submissions(self, client, cast, assignment):
        old = submit(assignment, cast.student, OLD_CODE, minutes_ago=10)
        new = submit(assignment, cast.student, NEW_CODE)
        client.force_login(cast.ta)

        response = client.get(reverse("submission_diff", args=[old.pk, new.pk]))

        assert response.status_code == 200
        assert "np.ones" in response.content.decode()

    def test_submissions_of_two_assignments_are_not_compared(self, client, cast, assignment):
        other_assignment = AssignmentFactory(chapter=cast.questionnaire.chapter)
        first = submit(assignment, cast.student)
        second = submit(other_assignment, cast.student)
        client.force_login(cast.student)

        assert client.get(reverse("submission_diff", args=[first.pk, second.pk])).status_code == 404

    def test_the_outsider_is_refused(self, client, cast, assignment):
        old = submit(assignment, cast.student, minutes_ago=10)
        new = submit(assignment, cast.student)
        client.force_login(cast.outsider)

        assert client.get(reverse("submission_diff", args=[old.pk, new.pk])).status_code == 403
