"""The leaderboard: ranking, baselines, the private split, anonymity, pages, access, the cache."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from courses import services as course_services
from courses.models import Enrolment, Role
from grader import leaderboards, submissions
from grader.leaderboards import leaderboard_for_assignment
from grader.models import RunStatus, Submission
from grader.pipeline import Evaluation
from tests.factories import ChapterFactory, EnrolmentFactory, UserFactory
from tests.grader.factories import (
    AssignmentFactory,
    BaselineFactory,
    BaselineRunFactory,
    SubmissionFactory,
)

pytestmark = pytest.mark.django_db

# Distinctive figures: finding one of them in a page means it leaked.
PRIVATE_SCORE = 0.3717
BASELINE_PRIVATE_SCORE = 0.2843


@pytest.fixture(autouse=True)
def _empty_cache():
    # Rankings are cached in Redis, which outlives each test's database transaction.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def assignment(cast):
    return AssignmentFactory(
        chapter=cast.questionnaire.chapter, due_at=timezone.now() + timedelta(days=7)
    )


def enrol(course, name: str, role: str = Role.STUDENT):
    user = UserFactory(username=name.lower().replace(" ", "-"), display_name=name)
    EnrolmentFactory(user=user, course=course, role=role)
    return user


def scored(assignment, user, public: float, private: float | None = None, *, minutes_ago=None):
    submission = SubmissionFactory(
        assignment=assignment,
        user=user,
        scored=True,
        public_score=public,
        private_score=public if private is None else private,
    )
    if minutes_ago is not None:
        Submission.objects.filter(pk=submission.pk).update(
            created_at=timezone.now() - timedelta(minutes=minutes_ago)
        )
    return submission


def baseline(assignment, name: str, public: float, private: float | None = None):
    run = BaselineRunFactory(
        baseline=BaselineFactory(assignment=assignment, name=name),
        status=RunStatus.SCORED,
        public_score=public,
        private_score=public if private is None else private,
        finished_at=timezone.now(),
    )
    return run.baseline


def board_for(assignment, viewer, *, page=1, now=None):
    return leaderboard_for_assignment(
        assignment=assignment, viewer=viewer, now=now or timezone.now(), page=page
    )


def table(board) -> list[tuple[int | None, str, float | None]]:
    return [(row.rank, row.name, row.score) for row in board.page.object_list]


def close(assignment):
    assignment.due_at = timezone.now() - timedelta(hours=1)
    assignment.save()


class TestRanking:
    def test_each_student_appears_once_with_their_best_public_score(self, cast, assignment):
        ada, bob = enrol(cast.course, "Ada"), enrol(cast.course, "Bob")
        scored(assignment, ada, 0.70)
        scored(assignment, ada, 0.95)
        scored(assignment, ada, 0.80)
        scored(assignment, bob, 0.90)
        SubmissionFactory(assignment=assignment, user=bob)  # queued: no score yet

        board = board_for(assignment, cast.student)

        assert table(board) == [(1, "Ada", 0.95), (2, "Bob", 0.90)]
        assert board.student_count == 2

    def test_ties_go_to_the_earlier_submission(self, cast, assignment):
        late, early = enrol(cast.course, "Late"), enrol(cast.course, "Early")
        scored(assignment, late, 0.9, minutes_ago=5)
        scored(assignment, early, 0.9, minutes_ago=50)
        # Between a student's own equal scores the earlier one counts too.
        first = scored(assignment, late, 0.8, minutes_ago=60)
        scored(assignment, early, 0.8, minutes_ago=70)
        first_again = scored(assignment, cast.student, 0.85, minutes_ago=30)
        scored(assignment, cast.student, 0.85, minutes_ago=10)

        board = board_for(assignment, cast.student)

        assert [name for _, name, _ in table(board)] == ["Early", "Late", cast.student.public_name]
        assert board.viewer_row.submission_id == first_again.pk
        assert first.pk not in [row.submission_id for row in board.page.object_list]

    def test_lower_is_better_metrics_rank_the_smallest_error_first(self, cast):
        assignment = AssignmentFactory(chapter=cast.questionnaire.chapter, metric="mse")
        ada, bob = enrol(cast.course, "Ada"), enrol(cast.course, "Bob")
        scored(assignment, ada, 2.5)
        scored(assignment, ada, 0.4)
        scored(assignment, bob, 1.1)
        baseline(assignment, "Predict the mean", 1.0)

        board = board_for(assignment, cast.student)

        assert table(board) == [(1, "Ada", 0.4), (None, "Predict the mean", 1.0), (2, "Bob", 1.1)]

    def test_baselines_are_rows_without_a_rank_and_a_tie_does_not_beat_them(self, cast, assignment):
        ada, bob = enrol(cast.course, "Ada"), enrol(cast.course, "Bob")
        scored(assignment, ada, 0.95)
        scored(assignment, bob, 0.80)
        baseline(assignment, "Pixel similarity", 0.80)
        baseline(assignment, "Majority class", 0.10)

        board = board_for(assignment, cast.student)

        assert table(board) == [
            (1, "Ada", 0.95),
            (None, "Pixel similarity", 0.80),
            (2, "Bob", 0.80),
            (None, "Majority class", 0.10),
        ]
        assert [row.is_baseline for row in board.page.object_list] == [False, True, False, True]
        assert board.student_count == 2

    def test_only_the_course_students_are_ranked(self, cast, assignment):
        scored(assignment, cast.student, 0.5)
        scored(assignment, cast.ta, 0.99)
        scored(assignment, cast.instructor, 0.98)
        scored(assignment, UserFactory(), 0.97)  # not in the course

        board = board_for(assignment, cast.student)

        assert table(board) == [(1, cast.student.public_name, 0.5)]

    def test_the_postgresql_query_and_the_portable_one_agree(self, cast, assignment):
        for index, name in enumerate(["Ada", "Bob", "Cy", "Di"]):
            user = enrol(cast.course, name)
            scored(assignment, user, 0.5 + index % 2 / 10, 0.4, minutes_ago=index)
            scored(assignment, user, 0.6, 0.3 + index / 10, minutes_ago=10 + index)
        scored(assignment, cast.ta, 0.99)

        fast = leaderboards._best_submissions(assignment, with_private=True)
        portable = leaderboards._best_submissions_portable(assignment, with_private=True)

        assert [row[:2] + row[3:] for row in fast] == [row[:2] + row[3:] for row in portable]
        assert [round(row[2], 3) for row in fast] == [round(row[2], 3) for row in portable]
        assert len(fast) == 4


class TestPrivateSplit:
    @pytest.fixture
    def ranked(self, cast, assignment):
        scored(assignment, cast.student, 0.8125, PRIVATE_SCORE)
        scored(assignment, cast.other_student, 0.75, 0.6)
        baseline(assignment, "Pixel similarity", 0.5, BASELINE_PRIVATE_SCORE)
        return assignment

    def pages(self, client, cast, assignment):
        """Every page and URL that shows anything about these scores."""
        mine = Submission.objects.filter(user=cast.student).first()
        second = scored(assignment, cast.student, 0.7, PRIVATE_SCORE)
        urls = {
            cast.student: [
                reverse("assignment_leaderboard", args=[assignment.slug]),
                reverse("assignment_leaderboard", args=[assignment.slug]) + "?page=2",
                reverse("assignment_history", args=[assignment.slug]),
                reverse("assignment_detail", args=[assignment.slug]),
                reverse("submission_detail", args=[mine.pk]),
                reverse("submission_status", args=[mine.pk]),
                reverse("submission_diff", args=[mine.pk, second.pk]),
            ],
            cast.instructor: [
                reverse("assignment_leaderboard", args=[assignment.slug]),
                reverse("assignment_history", args=[assignment.slug]) + "?student=student",
                reverse("submission_detail", args=[mine.pk]),
                reverse("submission_diff", args=[mine.pk, second.pk]),
            ],
        }
        for user, user_urls in urls.items():
            client.force_login(user)
            for url in user_urls:
                response = client.get(url)
                assert response.status_code == 200, url
                yield url, response.content.decode()

    def test_private_scores_are_served_by_no_page_before_the_due_date(self, client, cast, ranked):
        for url, html in self.pages(client, cast, ranked):
            assert str(PRIVATE_SCORE) not in html, url
            assert str(BASELINE_PRIVATE_SCORE) not in html, url
            assert "places up" not in html and "places down" not in html, url
        public = leaderboards.leaderboard_ranking(assignment=ranked, split="public")
        assert PRIVATE_SCORE not in public.scores

    def test_no_due_date_means_the_private_split_stays_hidden(self, client, cast, ranked):
        ranked.due_at = None
        ranked.save()
        client.force_login(cast.student)

        html = client.get(reverse("assignment_leaderboard", args=[ranked.slug])).content.decode()

        assert str(PRIVATE_SCORE) not in html

    def test_after_the_due_date_the_private_split_ranks_with_rank_changes(
        self, client, cast, ranked
    ):
        close(ranked)
        client.force_login(cast.student)

        html = client.get(reverse("assignment_leaderboard", args=[ranked.slug])).content.decode()

        board = board_for(ranked, cast.student)
        assert board.revealed
        assert [(row.rank, row.name, row.score, row.rank_change) for row in board.page] == [
            (1, cast.other_student.public_name, 0.6, 1),
            (2, cast.student.public_name, PRIVATE_SCORE, -1),
            (None, "Pixel similarity", BASELINE_PRIVATE_SCORE, None),
        ]
        assert str(PRIVATE_SCORE) in html
        assert '1<span class="visually-hidden"> places down from public rank 1' in html
        assert "places up from public rank 2" in html

    def test_the_private_ranking_uses_each_students_best_public_submission(self, cast, assignment):
        ada, bob = enrol(cast.course, "Ada"), enrol(cast.course, "Bob")
        scored(assignment, ada, 0.9, 0.5)
        scored(assignment, ada, 0.6, 0.99)  # best on private rows nobody could see: not used
        scored(assignment, bob, 0.8, 0.7)
        close(assignment)

        board = board_for(assignment, cast.student)

        assert [(rank, name, score) for rank, name, score in table(board)] == [
            (1, "Bob", 0.7),
            (2, "Ada", 0.5),
        ]
        assert [row.public_rank for row in board.page] == [2, 1]


class TestAnonymity:
    @pytest.fixture
    def anonymous(self, cast, assignment):
        Enrolment.objects.filter(user=cast.other_student).update(leaderboard_anonymous=True)
        scored(assignment, cast.other_student, 0.9)
        scored(assignment, cast.student, 0.8)
        return Enrolment.objects.get(user=cast.other_student)

    def test_other_students_see_a_stable_anonymous_label(self, client, cast, assignment, anonymous):
        client.force_login(cast.student)
        url = reverse("assignment_leaderboard", args=[assignment.slug])

        first = client.get(url).content.decode()
        second = client.get(url).content.decode()

        label = f"Anonymous student #{leaderboards.anonymous_number(anonymous.pk)}"
        assert label in first and label in second
        assert cast.other_student.public_name not in first
        assert cast.other_student.username not in first

    def test_the_anonymous_student_sees_their_own_name_and_their_label(
        self, cast, assignment, anonymous
    ):
        row = board_for(assignment, cast.other_student).viewer_row

        assert row.name == cast.other_student.public_name
        assert row.shown_as == leaderboards.anonymous_label(anonymous.pk)

    def test_staff_see_the_real_name_and_the_choice(self, client, cast, assignment, anonymous):
        client.force_login(cast.ta)

        html = client.get(
            reverse("assignment_leaderboard", args=[assignment.slug])
        ).content.decode()

        assert cast.other_student.public_name in html
        assert f"shown to students as {leaderboards.anonymous_label(anonymous.pk)}" in html

    def test_anonymous_numbers_are_unique_stable_and_not_the_id(self):
        ids = [*range(1, 3000), *range(999_000, 1_001_000)]

        numbers = [leaderboards.anonymous_number(i) for i in ids]

        assert len(set(numbers)) == len(ids)
        assert numbers == [leaderboards.anonymous_number(i) for i in ids]
        assert sum(number == i for number, i in zip(numbers, ids, strict=True)) < 5
        assert all(1 <= number <= 10**6 for number in numbers[:2999])

    def test_a_new_choice_shows_at_once_on_a_page_seen_before(self, client, cast, assignment):
        scored(assignment, cast.other_student, 0.9)
        scored(assignment, cast.student, 0.8)
        client.force_login(cast.student)
        url = reverse("assignment_leaderboard", args=[assignment.slug])
        before = client.get(url).content.decode()

        enrolment = Enrolment.objects.get(user=cast.other_student)
        course_services.enrolment_anonymity_set(enrolment=enrolment, anonymous=True)
        after = client.get(url).content.decode()

        assert cast.other_student.public_name in before
        assert cast.other_student.public_name not in after
        assert leaderboards.anonymous_label(enrolment.pk) in after

    def test_a_new_display_name_shows_at_once(self, client, cast, assignment):
        scored(assignment, cast.other_student, 0.9)
        client.force_login(cast.student)
        url = reverse("assignment_leaderboard", args=[assignment.slug])
        client.get(url)

        cast.other_student.display_name = "Grace H."
        cast.other_student.save()

        assert "Grace H." in client.get(url).content.decode()

    def test_a_student_chooses_to_appear_anonymously_and_back(self, client, cast, assignment):
        client.force_login(cast.student)
        url = reverse("assignment_leaderboard_anonymity", args=[assignment.slug])
        enrolment = Enrolment.objects.get(user=cast.student, course=cast.course)

        response = client.post(url, {"anonymous": "on"})
        enrolment.refresh_from_db()
        assert response.status_code == 302
        assert enrolment.leaderboard_anonymous

        client.post(url, {})
        enrolment.refresh_from_db()
        assert not enrolment.leaderboard_anonymous

    def test_the_page_offers_the_choice_to_students_only(self, client, cast, assignment):
        url = reverse("assignment_leaderboard", args=[assignment.slug])
        client.force_login(cast.student)
        assert 'name="anonymous"' in client.get(url).content.decode()
        client.force_login(cast.ta)
        assert 'name="anonymous"' not in client.get(url).content.decode()

    @pytest.mark.parametrize("who", ["ta", "outsider"])
    def test_only_students_can_choose_anonymity(self, client, cast, assignment, who):
        client.force_login(getattr(cast, who))

        response = client.post(
            reverse("assignment_leaderboard_anonymity", args=[assignment.slug]), {"anonymous": "on"}
        )

        assert response.status_code == 403
        assert not Enrolment.objects.filter(leaderboard_anonymous=True).exists()


class TestPages:
    @pytest.fixture
    def crowd(self, cast, assignment):
        users = [enrol(cast.course, f"Student {index:03d}") for index in range(119)]
        for index, user in enumerate(users):
            scored(assignment, user, 1.0 - index / 1000)
        scored(assignment, cast.student, 0.001)  # last of 120
        return users

    def test_fifty_rows_per_page(self, cast, assignment, crowd):
        first, last = (
            board_for(assignment, cast.student),
            board_for(assignment, cast.student, page=3),
        )

        assert len(first.page.object_list) == 50
        assert [row.rank for row in last.page.object_list] == list(range(101, 121))
        assert first.page.paginator.num_pages == 3

    def test_your_row_is_pinned_on_pages_it_is_not_on(self, client, cast, assignment, crowd):
        client.force_login(cast.student)
        url = reverse("assignment_leaderboard", args=[assignment.slug])

        first = client.get(url).content.decode()
        third = client.get(url + "?page=3").content.decode()

        assert "leaderboard-pinned" in first
        assert first.count(cast.student.public_name) >= 2  # the pinned row and the page header
        assert "?page=3" in first  # a link to the page the viewer is on
        assert "leaderboard-pinned" not in third
        assert 'class="leaderboard-row is-viewer" aria-current="true"' in third
        board = board_for(assignment, cast.student)
        assert board.viewer_row.rank == 120
        assert not board.viewer_row_on_page

    def test_the_distribution_chart_marks_the_baselines_and_you(
        self, client, cast, assignment, crowd
    ):
        baseline(assignment, "Pixel similarity", 0.95)
        client.force_login(cast.student)

        html = client.get(
            reverse("assignment_leaderboard", args=[assignment.slug])
        ).content.decode()

        assert "<svg" in html and 'class="chart-highlight"' in html
        assert 'class="chart-marker-label" ' in html and "Pixel similarity" in html
        # The figures in words for screen readers: 50 of the 120 scores are above 0.95.
        assert "120 students on the public split" in html
        assert "beaten by 50" in html

    def test_no_link_to_another_students_submission(self, client, cast, assignment):
        theirs = scored(assignment, cast.other_student, 0.9)
        mine = scored(assignment, cast.student, 0.8)
        client.force_login(cast.student)

        html = client.get(
            reverse("assignment_leaderboard", args=[assignment.slug])
        ).content.decode()

        assert reverse("submission_detail", args=[mine.pk]) in html
        assert reverse("submission_detail", args=[theirs.pk]) not in html


class TestAccess:
    def test_the_outsider_is_refused(self, client, cast, assignment):
        client.force_login(cast.outsider)

        response = client.get(reverse("assignment_leaderboard", args=[assignment.slug]))

        assert response.status_code == 403

    def test_visitors_must_log_in(self, client, assignment):
        response = client.get(reverse("assignment_leaderboard", args=[assignment.slug]))

        assert response.status_code == 302
        assert reverse("login") in response["Location"]

    def test_an_assignment_of_another_course_is_refused(self, client, cast):
        elsewhere = AssignmentFactory(chapter=ChapterFactory())
        client.force_login(cast.student)

        response = client.get(reverse("assignment_leaderboard", args=[elsewhere.slug]))

        assert response.status_code == 403


class TestQueries:
    @pytest.mark.parametrize("students", [5, 40])
    def test_the_page_makes_a_fixed_number_of_queries(
        self, client, cast, assignment, students, django_assert_num_queries
    ):
        for index in range(students):
            scored(assignment, enrol(cast.course, f"S{index}"), index / 100)
        scored(assignment, cast.student, 0.5)
        baseline(assignment, "Pixel similarity", 0.3)
        client.force_login(cast.student)
        url = reverse("assignment_leaderboard", args=[assignment.slug])

        # user; the assignment with the enrolment; the ranking and the baselines; the names on
        # the page
        with django_assert_num_queries(5):
            assert client.get(url).status_code == 200
        # Cached: the ranking and the baselines come from Redis.
        with django_assert_num_queries(3):
            assert client.get(url + "?page=1").status_code == 200


class TestCache:
    def test_a_new_score_replaces_the_cached_ranking(
        self, cast, assignment, monkeypatch, django_capture_on_commit_callbacks
    ):
        scored(assignment, cast.student, 0.5)
        assert table(board_for(assignment, cast.student)) == [(1, cast.student.public_name, 0.5)]
        # Written behind the grader's back: the cached ranking does not see it.
        Submission.objects.filter(user=cast.student).update(public_score=0.55)
        assert table(board_for(assignment, cast.student))[0][2] == 0.5

        queued = SubmissionFactory(assignment=assignment, user=cast.other_student)
        monkeypatch.setattr(
            submissions,
            "evaluate",
            lambda **kwargs: Evaluation(
                status=RunStatus.SCORED, public_score=0.7, private_score=0.6
            ),
        )
        with django_capture_on_commit_callbacks(execute=True):
            submissions.submission_grade(submission_id=queued.pk, worker_id="test-worker")

        assert table(board_for(assignment, cast.student)) == [
            (1, cast.other_student.public_name, 0.7),
            (2, cast.student.public_name, 0.55),
        ]

    def test_the_page_draws_the_new_ranking_after_a_new_score(
        self, client, cast, assignment, monkeypatch, django_capture_on_commit_callbacks
    ):
        scored(assignment, cast.student, 0.5)
        client.force_login(cast.student)
        url = reverse("assignment_leaderboard", args=[assignment.slug])
        before = client.get(url).content.decode()
        assert "1 student on the public split" in before

        queued = SubmissionFactory(assignment=assignment, user=cast.other_student)
        monkeypatch.setattr(
            submissions,
            "evaluate",
            lambda **kwargs: Evaluation(
                status=RunStatus.SCORED, public_score=0.7, private_score=0.6
            ),
        )
        with django_capture_on_commit_callbacks(execute=True):
            submissions.submission_grade(submission_id=queued.pk, worker_id="test-worker")
        after = client.get(url).content.decode()

        # The figures, the chart (drawn once per ranking) and the viewer's rank are new.
        assert "2 students on the public split" in after and "best 0.7000" in after
        assert "<strong>2</strong> your rank" in after
        assert before.split("<svg")[1] != after.split("<svg")[1]

    def test_the_ranking_is_kept_in_the_process_between_requests(
        self, cast, assignment, django_assert_num_queries
    ):
        scored(assignment, cast.student, 0.5)
        first = leaderboards.leaderboard_ranking(assignment=assignment, split="public")
        # Gone from Redis (another process's view of it does not matter here).
        cache.delete_many(list(leaderboards._ranking_keys(assignment, "public")))

        with django_assert_num_queries(0):
            again = leaderboards.leaderboard_ranking(assignment=assignment, split="public")

        assert again is first

    def test_a_ranking_kept_in_the_process_expires_like_the_cached_one(self, cast, assignment):
        scored(assignment, cast.student, 0.5)
        kept = leaderboards.leaderboard_ranking(assignment=assignment, split="public")
        # Written behind the grader's back, then the backstop expiry passes (in Redis too).
        Submission.objects.filter(user=cast.student).update(public_score=0.55)
        kept.computed_at -= leaderboards.CACHE_SECONDS + 1
        cache.delete_many(list(leaderboards._ranking_keys(assignment, "public")))

        fresh = leaderboards.leaderboard_ranking(assignment=assignment, split="public")

        assert list(fresh.student_scores) == [0.55]

    def test_the_version_changes_only_after_the_commit(self, assignment):
        before = leaderboards.scores_version(assignment_id=assignment.pk)

        leaderboards.leaderboard_invalidate(assignment_id=assignment.pk)

        # Still inside the test's transaction: a reader now would see the old rows.
        assert leaderboards.scores_version(assignment_id=assignment.pk) == before

    def test_while_one_request_recomputes_the_others_serve_the_previous_ranking(
        self, cast, assignment, django_capture_on_commit_callbacks, django_assert_num_queries
    ):
        scored(assignment, cast.student, 0.5)
        leaderboards.leaderboard_ranking(assignment=assignment, split="public")
        scored(assignment, cast.other_student, 0.9)
        with django_capture_on_commit_callbacks(execute=True):
            leaderboards.leaderboard_invalidate(assignment_id=assignment.pk)
        key, _ = leaderboards._ranking_keys(assignment, "public")
        cache.add(f"{key}:computing", True)  # another request is computing the new one

        with django_assert_num_queries(0):
            meanwhile = leaderboards.leaderboard_ranking(assignment=assignment, split="public")
        cache.delete(f"{key}:computing")
        fresh = leaderboards.leaderboard_ranking(assignment=assignment, split="public")

        assert list(meanwhile.student_scores) == [0.5]
        assert list(fresh.student_scores) == [0.9, 0.5]
