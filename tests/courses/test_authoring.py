"""The course editor: its services (what they write and refuse) and its pages as instructors use
them. Who may use them is in test_authoring_permissions.py; preview as a student in
test_preview.py."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from courses import authoring
from courses.authoring import ChoiceData, QuestionData, RubricItemData
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
from courses.services import attempt_save
from tests.factories import (
    ChapterFactory,
    QuestionFactory,
    QuestionnaireFactory,
    UserFactory,
    choice_question,
)

VISIBLE_TESTS = "from solution import add\n\ndef test_adds():\n    assert add(1, 2) == 3\n"


def valid_data(kind: str, **overrides: object) -> QuestionData:
    """A valid question of ``kind``, with ``overrides``."""
    by_kind: dict[str, dict[str, object]] = {
        "single": {
            "choices": [ChoiceData("Yes", True), ChoiceData("No", False)],
        },
        "multiple": {
            "choices": [ChoiceData("A", True), ChoiceData("B", True), ChoiceData("C")],
        },
        "true_false": {"correct_boolean": False},
        "numeric": {"numeric_answer": 784.0, "tolerance": 0.5},
        "short_text": {"accepted_answers": ["relu"], "answer_regex": r"^re?lu$"},
        "free_text": {
            "reference_answer": "Because **gradients**.",
            "rubric": [RubricItemData("Mentions gradients", Decimal("1"))],
        },
        "code": {
            "starter_code": "def add(a, b):\n    pass\n",
            "visible_tests": VISIBLE_TESTS,
            "hidden_tests": "from solution import add\n\ndef test_zero():\n    assert add(0, 0) == 0\n",
            "time_limit_seconds": 5,
        },
    }
    values = {"key": f"{kind.replace('_', '-')}-q", "prompt": "Why?", **by_kind[kind]}
    values.update(overrides)
    return QuestionData(**values)  # type: ignore[arg-type]


def submit_answer(user, question, response):
    return attempt_save(
        user=user,
        questionnaire=question.questionnaire,
        token=None,
        responses={question.id: response},
        submit=True,
    )


def errors_of(excinfo) -> dict[str, list[str]]:
    return excinfo.value.message_dict


# Courses -------------------------------------------------------------------------------------


def test_the_creator_of_a_course_is_its_instructor(db):
    user = UserFactory()

    course = authoring.course_create(user=user, slug="vision", title=" Vision ")

    assert course.title == "Vision"
    assert Enrolment.objects.get(course=course, user=user).role == Role.INSTRUCTOR


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("deep-learning", "already uses"),
        ("new", "reserved"),
        ("import", "reserved"),
        ("Not A Slug", "lowercase"),
    ],
)
def test_a_course_slug_must_be_free_and_well_formed(cast, slug, message):
    with pytest.raises(ValidationError) as excinfo:
        authoring.course_create(user=cast.outsider, slug=slug, title="Other")

    assert message in " ".join(errors_of(excinfo)["slug"])
    assert not Enrolment.objects.filter(user=cast.outsider).exists()


def test_an_invite_only_course_needs_a_code(cast):
    with pytest.raises(ValidationError) as excinfo:
        authoring.course_update(
            course=cast.course, title="T", description="", enrolment="invite", invite_code=" "
        )

    assert "invite_code" in errors_of(excinfo)
    cast.course.refresh_from_db()
    assert cast.course.enrolment == Course.Enrolment.OPEN


# Chapters ------------------------------------------------------------------------------------


def test_a_new_chapter_is_a_draft_at_the_end_of_the_course(cast):
    chapter = authoring.chapter_create(course=cast.course, slug="second", title="Second")

    assert chapter.published is False
    assert list(Chapter.objects.filter(course=cast.course)) == [cast.questionnaire.chapter, chapter]


@pytest.mark.parametrize(
    ("slug", "message"), [("first-model", "already uses"), ("new", "reserved"), ("a_b", "Use")]
)
def test_a_chapter_slug_must_be_free_in_its_course(cast, slug, message):
    with pytest.raises(ValidationError) as excinfo:
        authoring.chapter_create(course=cast.course, slug=slug, title="Other")

    assert message in " ".join(errors_of(excinfo)["slug"])


def test_renaming_a_chapter_keeps_its_stable_id_and_frees_nothing_it_needs(cast):
    chapter = cast.questionnaire.chapter
    authoring.chapter_update(chapter=chapter, slug="renamed", title="Renamed", body="Hi")

    again = authoring.chapter_create(course=cast.course, slug="first-model", title="New one")

    chapter.refresh_from_db()
    assert (chapter.slug, chapter.uid) == ("renamed", "first-model")
    assert again.uid != "first-model"


def test_moving_chapters_reorders_them_and_stops_at_the_ends(cast):
    first = cast.questionnaire.chapter
    second = ChapterFactory(course=cast.course, slug="second", position=first.position)
    third = ChapterFactory(course=cast.course, slug="third", position=first.position + 5)

    authoring.chapter_move(chapter=third, offset=-1)
    authoring.chapter_move(chapter=first, offset=-1)

    assert [c.slug for c in Chapter.objects.filter(course=cast.course)] == [
        first.slug,
        third.slug,
        second.slug,
    ]


def test_publishing_and_unpublishing_a_chapter(cast):
    chapter = authoring.chapter_create(course=cast.course, slug="draft", title="Draft")

    authoring.chapter_publish(chapter=chapter, published=True)
    assert Chapter.objects.get(pk=chapter.pk).published is True
    authoring.chapter_publish(chapter=chapter, published=False)
    assert Chapter.objects.get(pk=chapter.pk).published is False


def test_a_chapter_students_answered_cannot_be_deleted(cast):
    question = QuestionFactory(questionnaire=cast.questionnaire)
    submit_answer(cast.student, question, "forty two")

    with pytest.raises(authoring.AuthoringError, match="Unpublish"):
        authoring.chapter_delete(chapter=cast.questionnaire.chapter)

    assert Answer.objects.filter(question=question).count() == 1


def test_a_chapter_only_staff_answered_can_be_deleted(cast):
    question = QuestionFactory(questionnaire=cast.questionnaire)
    submit_answer(cast.instructor, question, "forty two")

    authoring.chapter_delete(chapter=cast.questionnaire.chapter)

    assert not Chapter.objects.filter(course=cast.course).exists()


def test_a_chapter_with_assignments_cannot_be_deleted(cast, settings, tmp_path):
    from tests.grader.factories import AssignmentFactory

    settings.MEDIA_ROOT = tmp_path
    AssignmentFactory(chapter=cast.questionnaire.chapter)

    with pytest.raises(authoring.AuthoringError, match="assignments"):
        authoring.chapter_delete(chapter=cast.questionnaire.chapter)


# Questionnaires and questions -----------------------------------------------------------------


def test_a_chapter_gets_a_questionnaire_and_its_settings_change(cast):
    chapter = ChapterFactory(course=cast.course)
    due = timezone.now() + dt.timedelta(days=3)

    questionnaire = authoring.questionnaire_save(
        chapter=chapter,
        title="Quiz",
        max_attempts=2,
        counts="last",
        reveal="after_due_date",
        late="accept",
        due_at=due,
    )
    again = authoring.questionnaire_save(
        chapter=chapter,
        title="Quiz 2",
        max_attempts=0,
        counts="best",
        reveal="after_each_attempt",
        late="refuse",
        due_at=None,
    )

    assert again.pk == questionnaire.pk
    assert (again.title, again.max_attempts, again.due_at) == ("Quiz 2", 0, None)


@pytest.mark.parametrize("kind", Question.Kind.values)
def test_every_kind_of_question_can_be_created(cast, kind):
    question = authoring.question_create(
        questionnaire=cast.questionnaire, kind=kind, data=valid_data(kind)
    )

    question.refresh_from_db()
    assert question.kind == kind
    if kind == "single":
        assert [(c.text, c.is_correct) for c in question.choices.all()] == [
            ("Yes", True),
            ("No", False),
        ]
    if kind == "free_text":
        assert [item.text for item in question.rubric_items.all()] == ["Mentions gradients"]
    if kind == "code":
        assert question.visible_tests == VISIBLE_TESTS and question.has_hidden_tests


def test_fields_of_another_kind_are_not_stored(cast):
    data = valid_data("numeric", accepted_answers=["x"], choices=[ChoiceData("a", True)])

    question = authoring.question_create(
        questionnaire=cast.questionnaire, kind="numeric", data=data
    )

    assert question.accepted_answers == [] and not question.choices.exists()


@pytest.mark.parametrize(
    ("kind", "overrides", "field"),
    [
        ("single", {"choices": [ChoiceData("Only", True)]}, "choices"),
        ("single", {"choices": [ChoiceData("A", True), ChoiceData("B", True)]}, "choices"),
        ("single", {"choices": [ChoiceData("A"), ChoiceData("B")]}, "choices"),
        ("multiple", {"choices": [ChoiceData("A"), ChoiceData("B")]}, "choices"),
        ("multiple", {"choices": [ChoiceData("A", True), ChoiceData(" ")]}, "choices"),
        ("true_false", {"correct_boolean": None}, "correct_boolean"),
        ("numeric", {"numeric_answer": None}, "numeric_answer"),
        ("numeric", {"tolerance": -1.0}, "tolerance"),
        ("short_text", {"accepted_answers": [], "answer_regex": ""}, "accepted_answers"),
        ("short_text", {"answer_regex": "re(lu"}, "answer_regex"),
        ("free_text", {"reference_answer": "  "}, "reference_answer"),
        ("free_text", {"rubric": [RubricItemData("x", Decimal("-1"))]}, "rubric"),
        ("code", {"visible_tests": "def test_x(:\n", "hidden_tests": ""}, "visible_tests"),
        ("code", {"visible_tests": "", "hidden_tests": ""}, "visible_tests"),
        ("code", {"hidden_tests": "x = 1\n"}, "hidden_tests"),
        ("code", {"starter_code": "def add(:\n"}, "starter_code"),
        ("code", {"time_limit_seconds": 600}, "time_limit_seconds"),
        ("short_text", {"key": "Bad Key"}, "key"),
        ("short_text", {"prompt": " "}, "prompt"),
        ("short_text", {"points": Decimal("-1")}, "points"),
    ],
)
def test_an_invalid_question_is_refused_beside_the_field_and_nothing_is_saved(
    cast, kind, overrides, field
):
    with pytest.raises(ValidationError) as excinfo:
        authoring.question_create(
            questionnaire=cast.questionnaire, kind=kind, data=valid_data(kind, **overrides)
        )

    assert field in errors_of(excinfo)
    assert not Question.objects.exists() and not Choice.objects.exists()


def test_a_key_taken_by_an_archived_question_is_refused(cast):
    archived = QuestionFactory(questionnaire=cast.questionnaire, key="taken", archived=True)

    with pytest.raises(ValidationError) as excinfo:
        authoring.question_create(
            questionnaire=cast.questionnaire,
            kind="short_text",
            data=valid_data("short_text", key=archived.key),
        )

    assert "removed" in errors_of(excinfo)["key"][0]


def test_editing_choices_keeps_their_ids(cast):
    question = choice_question(cast.questionnaire, kind="multiple", correct=[True, False, True])
    a, b, c = question.choices.all()

    # The editor names each row's choice: dropping the middle one keeps the others' ids.
    authoring.question_update(
        question=question,
        data=valid_data(
            "multiple",
            choices=[
                ChoiceData("A, reworded", True, id=a.id),
                ChoiceData("C", False, id=c.id),
                ChoiceData("D", True),
            ],
        ),
    )

    rows = list(question.choices.values_list("id", "text", "is_correct"))
    assert rows[:2] == [(a.id, "A, reworded", True), (c.id, "C", False)]
    assert rows[2][1:] == ("D", True) and rows[2][0] not in (a.id, b.id, c.id)
    assert not Choice.objects.filter(pk=b.pk).exists()


def test_choices_without_ids_are_matched_by_position(cast):
    question = choice_question(cast.questionnaire, kind="single", correct=[True, False])
    ids = list(question.choices.values_list("id", flat=True))

    authoring.question_update(
        question=question,
        data=valid_data("single", choices=[ChoiceData("X"), ChoiceData("Y", True)]),
    )

    assert list(question.choices.values_list("id", "text")) == [(ids[0], "X"), (ids[1], "Y")]


def test_an_answer_keeps_pointing_at_its_choice_after_an_edit(cast):
    question = choice_question(cast.questionnaire, kind="single", correct=[False, True])
    wrong, right = question.choices.all()
    submit_answer(cast.student, question, [right.id])

    authoring.question_update(
        question=question,
        data=valid_data(
            "single",
            choices=[
                ChoiceData("New first", False),
                *[ChoiceData(c.text, c.is_correct, id=c.id) for c in (wrong, right)],
            ],
        ),
    )

    answer = Answer.objects.get(question=question)
    assert Choice.objects.get(pk=answer.response[0]).text == right.text


def test_moving_questions_reorders_them(cast):
    q1, q2, q3 = (QuestionFactory(questionnaire=cast.questionnaire) for _ in range(3))

    authoring.question_move(question=q3, offset=-1)
    authoring.question_move(question=q1, offset=-1)  # already first: nothing happens

    assert list(cast.questionnaire.questions.values_list("id", flat=True)) == [q1.id, q3.id, q2.id]


def test_duplicating_a_question_copies_its_choices_right_after_it(cast):
    original = choice_question(cast.questionnaire, kind="single", correct=[False, True], key="pick")
    last = QuestionFactory(questionnaire=cast.questionnaire, key="last")

    copy = authoring.question_duplicate(question=original)
    second = authoring.question_duplicate(question=original)

    assert (copy.key, second.key) == ("pick-copy", "pick-copy-2")
    assert list(cast.questionnaire.questions.values_list("key", flat=True)) == [
        "pick",
        "pick-copy-2",
        "pick-copy",
        "last",
    ]
    assert [(c.text, c.is_correct) for c in copy.choices.all()] == [
        (c.text, c.is_correct) for c in original.choices.all()
    ]
    assert not set(copy.choices.values_list("id", flat=True)) & set(
        original.choices.values_list("id", flat=True)
    )
    assert last.pk


def test_duplicating_a_free_text_question_copies_its_rubric(cast):
    question = authoring.question_create(
        questionnaire=cast.questionnaire, kind="free_text", data=valid_data("free_text")
    )

    copy = authoring.question_duplicate(question=question)

    assert [(r.text, r.points) for r in copy.rubric_items.all()] == [
        ("Mentions gradients", Decimal("1.00"))
    ]
    assert copy.reference_answer == question.reference_answer


def test_removing_an_unanswered_question_deletes_it(cast):
    question = QuestionFactory(questionnaire=cast.questionnaire)

    assert authoring.question_remove(question=question) is False
    assert not Question.objects.filter(pk=question.pk).exists()


def test_removing_an_answered_question_archives_it_and_keeps_the_answers(cast, client_for):
    question = QuestionFactory(questionnaire=cast.questionnaire, accepted_answers=["42"])
    other = QuestionFactory(questionnaire=cast.questionnaire)
    attempt = submit_answer(cast.student, question, "42")

    assert authoring.question_remove(question=question) is True

    question.refresh_from_db()
    assert question.archived
    answer = Answer.objects.get(question=question)
    assert answer.score == Decimal("1") and Attempt.objects.get(pk=attempt.pk).score == 1
    # New attempts no longer ask it.
    page = client_for(cast.student).get(
        reverse("questionnaire_detail", args=[cast.course.slug, "first-model"])
    )
    assert [q.id for q in page.context["page"].questions] == [other.id]
    assert f'id="question-{other.id}"'.encode() in page.content
    assert f'id="question-{question.id}"'.encode() not in page.content


# Pages -------------------------------------------------------------------------------------


def course_urls(cast) -> dict[str, str]:
    course, chapter = cast.course.slug, cast.questionnaire.chapter.slug
    return {
        "overview": reverse("course_authoring", args=[course]),
        "new_chapter": reverse("chapter_create", args=[course]),
        "chapter": reverse("chapter_edit", args=[course, chapter]),
        "builder": reverse("questionnaire_edit", args=[course, chapter]),
        "new_question": reverse("question_create", args=[course, chapter]),
    }


def test_a_user_allowed_to_create_courses_creates_one_and_teaches_it(db, client_for):
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="add_course"))

    response = client_for(user).post(
        reverse("course_create"),
        {"slug": "vision", "title": "Vision", "description": "", "enrolment": "open"},
    )

    course = Course.objects.get(slug="vision")
    assert response.url == reverse("course_authoring", args=["vision"])
    assert Enrolment.objects.get(course=course, user=user).role == Role.INSTRUCTOR


def test_the_course_settings_form_shows_errors_beside_the_fields(cast, client_for):
    response = client_for(cast.instructor).post(
        reverse("course_settings", args=[cast.course.slug]),
        {"title": "Deep Learning", "enrolment": "invite", "invite_code": ""},
    )

    assert response.status_code == 200
    assert "invite code" in response.context["form"].errors["invite_code"][0]


def test_an_instructor_writes_a_chapter_as_a_draft(cast, client_for):
    client = client_for(cast.instructor)

    response = client.post(
        course_urls(cast)["new_chapter"],
        {"title": "Backprop", "slug": "backprop", "body": "# Chain rule\n$x$"},
    )

    chapter = Chapter.objects.get(slug="backprop")
    assert response.url == reverse("chapter_edit", args=[cast.course.slug, "backprop"])
    assert not chapter.published
    page = client.get(response.url)
    assert b'data-markdown-preview="body-preview"' in page.content
    assert b"js/markdown-preview.js" in page.content
    assert b"<h1>Chain rule</h1>" in page.content  # the preview, rendered without JavaScript


def test_a_taken_chapter_slug_shows_beside_the_field(cast, client_for):
    ChapterFactory(course=cast.course, slug="taken")

    response = client_for(cast.instructor).post(
        course_urls(cast)["chapter"], {"title": "T", "slug": "taken", "body": ""}
    )

    assert response.status_code == 200
    assert "already uses" in response.context["form"].errors["slug"][0]
    assert Chapter.objects.filter(slug="first-model").exists()


def test_the_overview_lists_chapters_with_their_state_and_actions(cast, client_for):
    ChapterFactory(course=cast.course, slug="later", title="Later", published=False)

    response = client_for(cast.instructor).get(course_urls(cast)["overview"])

    html = response.content.decode()
    assert "Later" in html and "Draft" in html and "Published" in html
    assert reverse("chapter_publish", args=[cast.course.slug, "later"]) in html
    assert reverse("chapter_move", args=[cast.course.slug, "later"]) in html


def test_move_and_publish_buttons_work(cast, client_for):
    later = ChapterFactory(course=cast.course, slug="later", published=False, position=99)
    client = client_for(cast.instructor)

    client.post(reverse("chapter_move", args=[cast.course.slug, "later"]), {"direction": "up"})
    client.post(reverse("chapter_publish", args=[cast.course.slug, "later"]), {"published": "1"})

    later.refresh_from_db()
    assert later.published
    assert Chapter.objects.filter(course=cast.course).first() == later


def test_the_settings_form_reads_the_due_date_in_the_site_time_zone(cast, client_for, settings):
    settings.TIME_ZONE = "Europe/Paris"
    timezone.activate("Europe/Paris")
    try:
        response = client_for(cast.instructor).post(
            course_urls(cast)["builder"],
            {
                "title": "Quiz",
                "max_attempts": "3",
                "counts": "best",
                "reveal": "after_each_attempt",
                "late": "refuse",
                "due_at": "2030-06-01T18:30",
            },
        )
    finally:
        timezone.deactivate()

    assert response.status_code == 302
    questionnaire = Questionnaire.objects.get(pk=cast.questionnaire.pk)
    assert questionnaire.due_at == dt.datetime(2030, 6, 1, 16, 30, tzinfo=dt.UTC)
    assert questionnaire.max_attempts == 3


@pytest.mark.parametrize("kind", Question.Kind.values)
def test_the_question_form_adapts_to_its_kind(cast, client_for, kind):
    response = client_for(cast.instructor).get(course_urls(cast)["new_question"], {"kind": kind})

    assert response.status_code == 200
    fields = set(response.context["form"].fields)
    assert {"key", "prompt", "points", "explanation"} <= fields
    assert ("choices-TOTAL_FORMS" in response.content.decode()) == (kind in ("single", "multiple"))
    assert ("visible_tests" in fields) == (kind == "code")
    if kind == "code":
        assert b"codemirror.bundle.js" in response.content
        assert b"data-code-field" in response.content


def test_the_kind_is_chosen_first(cast, client_for):
    response = client_for(cast.instructor).get(course_urls(cast)["new_question"])

    assert response.templates[0].name == "courses/authoring/question_kind.html"


def choice_post(rows: list[tuple[str, bool]], **fields: str) -> dict[str, str]:
    data = {
        "key": "pick",
        "prompt": "Pick one",
        "points": "2",
        "explanation": "",
        "choices-TOTAL_FORMS": str(len(rows)),
        "choices-INITIAL_FORMS": "0",
        "choices-MIN_NUM_FORMS": "0",
        "choices-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for i, (text, correct) in enumerate(rows):
        data[f"choices-{i}-text"] = text
        if correct:
            data[f"choices-{i}-is_correct"] = "on"
    return data


def test_an_instructor_adds_a_choice_question_blank_rows_ignored(cast, client_for):
    url = course_urls(cast)["new_question"] + "?kind=single"

    response = client_for(cast.instructor).post(
        url, choice_post([("Yes", True), ("", False), ("No", False)])
    )

    assert response.status_code == 302
    question = Question.objects.get(key="pick")
    assert question.points == 2
    assert [(c.text, c.is_correct) for c in question.choices.all()] == [
        ("Yes", True),
        ("No", False),
    ]


def test_a_single_choice_with_two_correct_answers_shows_the_error_and_saves_nothing(
    cast, client_for
):
    question = choice_question(cast.questionnaire, kind="single", correct=[True, False], key="pick")
    url = reverse("question_edit", args=[cast.course.slug, "first-model", question.pk])

    response = client_for(cast.instructor).post(
        url, choice_post([("A", True), ("B", True)], prompt="Changed")
    )

    assert response.status_code == 200
    assert "exactly one correct" in response.content.decode()
    question.refresh_from_db()
    assert question.prompt == "What is the answer?"
    assert [c.is_correct for c in question.choices.all()] == [True, False]


def test_invalid_code_tests_show_beside_the_field(cast, client_for):
    url = course_urls(cast)["new_question"] + "?kind=code"

    response = client_for(cast.instructor).post(
        url,
        {
            "key": "add",
            "prompt": "Write add",
            "points": "1",
            "starter_code": "",
            "visible_tests": "def test_x(:\n  pass",
            "hidden_tests": "",
            "time_limit_seconds": "10",
        },
    )

    assert response.status_code == 200
    assert "visible_tests" in response.context["form"].errors
    assert not Question.objects.exists()


def test_a_free_text_question_with_a_rubric_from_the_form(cast, client_for):
    url = course_urls(cast)["new_question"] + "?kind=free_text"

    response = client_for(cast.instructor).post(
        url,
        {
            "key": "why",
            "prompt": "Why?",
            "points": "2",
            "reference_answer": "Because.",
            "rubric-TOTAL_FORMS": "2",
            "rubric-INITIAL_FORMS": "0",
            "rubric-MIN_NUM_FORMS": "0",
            "rubric-MAX_NUM_FORMS": "1000",
            "rubric-0-text": "Says because",
            "rubric-0-points": "1.5",
            "rubric-1-text": "",
            "rubric-1-points": "",
        },
    )

    assert response.status_code == 302
    question = Question.objects.get(key="why")
    assert [(r.text, r.points) for r in question.rubric_items.all()] == [
        ("Says because", Decimal("1.50"))
    ]


def test_the_edit_form_keeps_choice_ids_through_the_browser(cast, client_for):
    question = choice_question(cast.questionnaire, kind="single", correct=[True, False, False])
    a, b, c = question.choices.all()
    url = reverse("question_edit", args=[cast.course.slug, "first-model", question.pk])
    data = choice_post([("A", True), ("B", False), ("C", False)], key=question.key)
    data["choices-INITIAL_FORMS"] = "3"
    for i, choice in enumerate((a, b, c)):
        data[f"choices-{i}-id"] = str(choice.id)
    data["choices-1-DELETE"] = "on"

    response = client_for(cast.instructor).post(url, data)

    assert response.status_code == 302
    assert list(question.choices.values_list("id", flat=True)) == [a.id, c.id]


def test_removing_an_answered_question_from_the_builder_says_it_is_archived(cast, client_for):
    question = QuestionFactory(questionnaire=cast.questionnaire, accepted_answers=["42"])
    submit_answer(cast.student, question, "42")
    url = reverse("question_remove", args=[cast.course.slug, "first-model", question.pk])

    response = client_for(cast.instructor).post(url, follow=True)

    assert "archived" in response.content.decode()
    assert Question.objects.get(pk=question.pk).archived
    assert response.context["questions"] == []
    assert response.context["archived"] == [question]
    restore = reverse("question_restore", args=[cast.course.slug, "first-model", question.pk])
    assert f'action="{restore}"' in response.content.decode()


def test_an_archived_question_can_be_restored_at_the_end(cast, client_for):
    kept = QuestionFactory(questionnaire=cast.questionnaire, key="kept", accepted_answers=["1"])
    gone = QuestionFactory(questionnaire=cast.questionnaire, key="gone", accepted_answers=["42"])
    submit_answer(cast.student, gone, "42")
    args = [cast.course.slug, "first-model", gone.pk]
    client = client_for(cast.instructor)
    client.post(reverse("question_remove", args=args))
    later = QuestionFactory(questionnaire=cast.questionnaire, key="later", accepted_answers=["2"])

    response = client.post(reverse("question_restore", args=args), follow=True)

    assert response.status_code == 200 and "is back" in response.content.decode()
    gone.refresh_from_db()
    assert not gone.archived
    assert response.context["questions"] == [kept, later, gone]
    assert response.context["archived"] == []
    # The student's answer to it kept its score throughout.
    assert Answer.objects.get(question=gone, attempt__user=cast.student).score == gone.points
    # Restoring twice finds nothing to restore.
    assert client.post(reverse("question_restore", args=args)).status_code == 404


@pytest.mark.parametrize("role", ["outsider", "student", "ta"])
def test_only_instructors_restore_questions(cast, client_for, role):
    question = QuestionFactory(questionnaire=cast.questionnaire, accepted_answers=["42"])
    submit_answer(cast.student, question, "42")
    client_for(cast.instructor).post(
        reverse("question_remove", args=[cast.course.slug, "first-model", question.pk])
    )
    url = reverse("question_restore", args=[cast.course.slug, "first-model", question.pk])

    response = client_for(getattr(cast, role)).post(url)

    assert response.status_code in (403, 404)
    assert Question.objects.get(pk=question.pk).archived
    assert client_for(cast.instructor).get(url).status_code == 405


def test_duplicate_and_move_buttons_work(cast, client_for):
    first = QuestionFactory(questionnaire=cast.questionnaire, key="first")
    second = QuestionFactory(questionnaire=cast.questionnaire, key="second")
    client = client_for(cast.instructor)
    args = [cast.course.slug, "first-model"]

    client.post(reverse("question_duplicate", args=[*args, first.pk]))
    client.post(reverse("question_move", args=[*args, second.pk]), {"direction": "up"})

    assert list(cast.questionnaire.questions.values_list("key", flat=True)) == [
        "first",
        "second",
        "first-copy",
    ]


def test_overview_query_count_does_not_grow_with_chapters(
    cast, client_for, django_assert_num_queries
):
    for i in range(8):
        chapter = ChapterFactory(course=cast.course, published=bool(i % 2))
        if i % 3 == 0:
            QuestionFactory(questionnaire=QuestionnaireFactory(chapter=chapter))
    client = client_for(cast.instructor)
    client.get(course_urls(cast)["overview"])
    # user, enrolment+course, chapters with questionnaires and question counts
    with django_assert_num_queries(3):
        assert client.get(course_urls(cast)["overview"]).status_code == 200


def test_builder_query_count_does_not_grow_with_questions(
    cast, client_for, django_assert_num_queries
):
    for kind in ("single", "multiple", "single"):
        choice_question(cast.questionnaire, kind=kind, correct=[True, False])
    QuestionFactory(questionnaire=cast.questionnaire, kind="numeric", numeric_answer=1.0)
    QuestionFactory(questionnaire=cast.questionnaire, archived=True)
    client = client_for(cast.instructor)
    client.get(course_urls(cast)["builder"])
    # user, enrolment+course, chapter, questionnaire, questions
    with django_assert_num_queries(5):
        assert client.get(course_urls(cast)["builder"]).status_code == 200


def test_a_questionnaire_nobody_attempted_can_be_deleted_and_the_chapter_stays(cast, client_for):
    question = QuestionFactory(questionnaire=cast.questionnaire, accepted_answers=["42"])
    submit_answer(cast.instructor, question, "42")  # staff trying it out do not hold it
    url = reverse("questionnaire_delete", args=[cast.course.slug, "first-model"])
    client = client_for(cast.instructor)
    assert "1 question" in client.get(url).content.decode()

    response = client.post(url, follow=True)

    assert "deleted" in response.content.decode()
    assert not Questionnaire.objects.filter(pk=cast.questionnaire.pk).exists()
    assert not Question.objects.filter(pk=question.pk).exists()
    assert Chapter.objects.filter(pk=cast.questionnaire.chapter_id).exists()
    assert client.get(url).status_code == 404


def test_a_questionnaire_students_attempted_cannot_be_deleted(cast, client_for):
    question = QuestionFactory(questionnaire=cast.questionnaire, accepted_answers=["42"])
    submit_answer(cast.student, question, "42")
    url = reverse("questionnaire_delete", args=[cast.course.slug, "first-model"])

    response = client_for(cast.instructor).post(url, follow=True)

    assert "cannot be deleted" in response.content.decode()
    assert Questionnaire.objects.filter(pk=cast.questionnaire.pk).exists()
    assert Attempt.objects.filter(questionnaire=cast.questionnaire).count() == 1


def test_a_former_students_answers_keep_a_removed_question_archived(cast, client_for):
    question = QuestionFactory(questionnaire=cast.questionnaire, accepted_answers=["42"])
    submit_answer(cast.student, question, "42")
    Enrolment.objects.filter(user=cast.student, course=cast.course).delete()  # they left
    url = reverse("question_remove", args=[cast.course.slug, "first-model", question.pk])

    client_for(cast.instructor).post(url)

    assert Question.objects.get(pk=question.pk).archived
    assert Answer.objects.filter(question=question).count() == 1
