"""Preview as a student: staff see the course as a student does, drafts marked, answer its
questionnaires, and none of it counts anywhere."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from courses import gradebook, preview, selectors
from courses.access import course_access_for_user
from courses.models import Question, Questionnaire
from tests.factories import ChapterFactory, CourseFactory, QuestionFactory, choice_question

STOP = b"Stop preview"
BANNER = "as a student — your answers do not count"


@pytest.fixture
def quiz(cast):
    single = choice_question(cast.questionnaire, kind="single", correct=[False, True], key="pick")
    essay = QuestionFactory(
        questionnaire=cast.questionnaire,
        key="essay",
        kind=Question.Kind.FREE_TEXT,
        accepted_answers=[],
        reference_answer="The reference.",
    )
    return single, essay


@pytest.fixture
def draft(cast):
    return ChapterFactory(
        course=cast.course, slug="draft-chapter", title="Work in progress", published=False
    )


def urls(cast) -> dict[str, str]:
    course, chapter = cast.course.slug, cast.questionnaire.chapter.slug
    return {
        "toggle": reverse("course_preview", args=[course]),
        "course": reverse("course_detail", args=[course]),
        "chapter": reverse("chapter_detail", args=[course, chapter]),
        "draft": reverse("chapter_detail", args=[course, "draft-chapter"]),
        "questionnaire": reverse("questionnaire_detail", args=[course, chapter]),
    }


def start_preview(client, cast):
    return client.post(urls(cast)["toggle"], {"preview": "on"})


def answer(client, cast, quiz, *, essay_text="My essay"):
    single, essay = quiz
    right = single.choices.get(is_correct=True)
    return client.post(
        urls(cast)["questionnaire"],
        {f"q_{single.id}": str(right.id), f"q_{essay.id}": essay_text, "submit": "1"},
    )


# Turning it on and off -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["ta", "instructor"])
def test_staff_turn_preview_on_and_see_the_banner_on_every_page(cast, client_for, role):
    client = client_for(getattr(cast, role))

    response = start_preview(client, cast)

    assert response.url == urls(cast)["course"]
    for page in (urls(cast)["course"], reverse("home"), reverse("profile")):
        content = client.get(page).content.decode()
        assert BANNER in content and "Deep Learning" in content, page


def test_stopping_the_preview_removes_the_banner_and_returns_to_the_page(cast, client_for):
    client = client_for(cast.instructor)
    start_preview(client, cast)

    response = client.post(urls(cast)["toggle"], {"preview": "off", "next": urls(cast)["chapter"]})

    assert response.url == urls(cast)["chapter"]
    assert STOP not in client.get(urls(cast)["chapter"]).content


def test_the_preview_switch_ignores_an_outside_next_address(cast, client_for):
    client = client_for(cast.instructor)

    response = client.post(urls(cast)["toggle"], {"preview": "on", "next": "https://evil.example/"})

    assert response.url == urls(cast)["course"]


@pytest.mark.parametrize("role", ["student", "outsider"])
def test_students_and_outsiders_cannot_turn_preview_on(cast, client_for, role):
    client = client_for(getattr(cast, role))

    assert start_preview(client, cast).status_code == 403
    assert STOP not in client.get(reverse("home")).content


def test_anonymous_visitors_are_sent_to_log_in(cast, client):
    response = start_preview(client, cast)

    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_no_banner_without_preview(cast, client_for):
    assert STOP not in client_for(cast.instructor).get(urls(cast)["course"]).content


# What staff see ------------------------------------------------------------------------------


def test_previewing_staff_see_the_course_page_as_a_student_with_drafts_marked(
    cast, client_for, draft
):
    client = client_for(cast.instructor)
    start_preview(client, cast)

    response = client.get(urls(cast)["course"])

    content = response.content.decode()
    assert "Teaching" not in content
    assert reverse("course_authoring", args=[cast.course.slug]) not in content
    assert reverse("class_progress", args=[cast.course.slug]) not in content
    assert "Work in progress" in content and "Draft" in content
    assert response.context["access"].previewing and not response.context["access"].is_staff


def test_previewing_staff_read_a_draft_chapter_without_staff_links(cast, client_for, draft):
    client = client_for(cast.instructor)
    start_preview(client, cast)

    response = client.get(urls(cast)["draft"])

    assert response.status_code == 200
    content = response.content.decode()
    assert "Draft" in content
    assert reverse("chapter_edit", args=[cast.course.slug, "draft-chapter"]) not in content


def test_students_still_cannot_see_drafts(cast, client_for, draft):
    client = client_for(cast.student)

    assert client.get(urls(cast)["draft"]).status_code == 404
    assert "Work in progress" not in client.get(urls(cast)["course"]).content.decode()


def test_the_preview_is_per_course(cast, client_for):
    other = CourseFactory()
    request = RequestFactory().get("/")
    request.session = {}
    request.user = cast.instructor
    preview.preview_set(request, course=cast.course, enabled=True)

    ours = course_access_for_user(user=cast.instructor, course_slug=cast.course.slug)
    theirs = course_access_for_user(user=cast.instructor, course_slug=other.slug)

    assert preview.viewer_access(request, ours).previewing
    assert preview.viewer_access(request, theirs) == theirs


def test_the_attempt_page_follows_the_reveal_policy_in_preview(cast, client_for, quiz):
    Questionnaire.objects.filter(pk=cast.questionnaire.pk).update(
        reveal=Questionnaire.Reveal.AFTER_DUE_DATE
    )
    client = client_for(cast.instructor)
    start_preview(client, cast)
    attempt_url = answer(client, cast, quiz).url

    assert client.get(attempt_url).context["revealed"] is False
    client.post(urls(cast)["toggle"], {"preview": "off"})
    assert client.get(attempt_url).context["revealed"] is True


# Answering, and not counting -----------------------------------------------------------------


def test_previewing_staff_are_held_to_no_attempt_limit_or_due_date(cast, client_for, quiz):
    Questionnaire.objects.filter(pk=cast.questionnaire.pk).update(
        max_attempts=1,
        due_at=timezone.now() - timedelta(days=1),
        late=Questionnaire.Late.REFUSE,
    )
    client = client_for(cast.ta)
    start_preview(client, cast)

    first, second = answer(client, cast, quiz), answer(client, cast, quiz)

    assert "/attempts/" in first.url and "/attempts/" in second.url and first.url != second.url
    page = client.get(urls(cast)["questionnaire"])
    assert page.context["remaining"] is None and page.context["is_closed"] is False
    assert cast.questionnaire.attempts.filter(user=cast.ta, is_late=False).count() == 2


def test_students_are_still_held_to_the_attempt_limit(cast, client_for, quiz):
    Questionnaire.objects.filter(pk=cast.questionnaire.pk).update(max_attempts=1)
    client = client_for(cast.student)

    answer(client, cast, quiz)
    answer(client, cast, quiz)

    assert cast.questionnaire.attempts.filter(user=cast.student).count() == 1


@pytest.fixture
def answered(cast, client_for, quiz):
    """The instructor and the TA answer in preview (all right); one student answers (all wrong)."""
    for staff in (cast.instructor, cast.ta):
        client = client_for(staff)
        start_preview(client, cast)
        answer(client, cast, quiz, essay_text=f"Staff essay by {staff.username}")
        client.logout()
    single, essay = quiz
    wrong = single.choices.get(is_correct=False)
    client = client_for(cast.student)
    client.post(
        urls(cast)["questionnaire"],
        {f"q_{single.id}": str(wrong.id), f"q_{essay.id}": "Student essay", "submit": "1"},
    )
    return quiz


def test_staff_attempts_stay_out_of_class_progress(cast, answered):
    _, table = selectors.class_progress(course=cast.course)

    assert {row.username for row in table} == {"student", "other"}
    assert {row.username: row.attempts for row in table} == {"student": 1, "other": 0}


def test_staff_attempts_stay_out_of_the_gradebook(cast, client_for, answered):
    book = gradebook.gradebook_for_course(course=cast.course)

    assert {s.username: s.cells[0].fraction for s in book.students} == {
        "student": 0.0,
        "other": 0.0,
    }
    content = client_for(cast.instructor).get(reverse("gradebook", args=[cast.course.slug]))
    assert b"Staff essay" not in content.content
    assert cast.ta.username not in {s.username for s in book.students}


def test_staff_attempts_stay_out_of_questionnaire_statistics(cast, answered):
    single, _ = answered

    stats = gradebook.questionnaire_statistics(questionnaire=cast.questionnaire)

    assert (stats.attempts, stats.students) == (1, 1)
    pick = next(item for item in stats.questions if item.question == single)
    assert (pick.answers, pick.correct) == (1, 0)
    assert {share.choice.is_correct: share.count for share in pick.choices} == {
        True: 0,
        False: 1,
    }


def test_staff_answers_stay_out_of_the_review_queue(cast, client_for, answered):
    queue = list(selectors.review_queue(course=cast.course))

    assert [a.response for a in queue] == ["Student essay"]
    assert selectors.review_queue_count(course=cast.course) == 1
    page = client_for(cast.ta).get(reverse("review_queue", args=[cast.course.slug]))
    assert b"Staff essay" not in page.content


@pytest.mark.django_db
def test_the_assignment_page_hides_staff_links_while_previewing(client, cast):
    from tests.grader.factories import AssignmentFactory

    assignment = AssignmentFactory(chapter=cast.questionnaire.chapter, slug="previewed")
    client.force_login(cast.instructor)
    url = reverse("assignment_detail", args=[assignment.slug])
    assert b"All submissions (staff)" in client.get(url).content

    start_preview(client, cast)
    page = client.get(url).content.decode()

    assert "All submissions (staff)" not in page and "Edit assignment" not in page
    assert BANNER in page
