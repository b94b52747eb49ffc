"""Who may use the course editor: every authoring address, for everyone in the cast, by GET and
by POST. Instructors only; TAs review and grade but never change content; nobody else learns
anything or changes anything."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from courses.models import Chapter, Choice, Course, Question, Questionnaire
from tests.factories import ChapterFactory, UserFactory, choice_question


@dataclass(frozen=True)
class Page:
    name: str
    scope: str  # "site", "course", "chapter" or "question": the arguments its URL takes
    methods: tuple[str, ...]  # what it answers; anything else is a 405, whoever asks
    post: dict[str, str]  # valid data: an instructor's POST changes something


def _choice_rows() -> dict[str, str]:
    return {
        "choices-TOTAL_FORMS": "2",
        "choices-INITIAL_FORMS": "0",
        "choices-MIN_NUM_FORMS": "0",
        "choices-MAX_NUM_FORMS": "1000",
        "choices-0-text": "Yes",
        "choices-0-is_correct": "on",
        "choices-1-text": "No",
    }


BOTH = ("get", "post")
SETTINGS = {"title": "Quiz", "max_attempts": "2", "counts": "best", "reveal": "after_each_attempt"}

PAGES = [
    Page("course_create", "site", BOTH, {"slug": "vision", "title": "Vision", "enrolment": "open"}),
    Page("course_authoring", "course", ("get",), {}),
    Page("course_settings", "course", BOTH, {"title": "Renamed", "enrolment": "open"}),
    Page("chapter_create", "course", BOTH, {"title": "New", "slug": "brand-new"}),
    Page("chapter_edit", "chapter", BOTH, {"title": "Renamed", "slug": "first-model"}),
    Page("chapter_move", "chapter", ("post",), {"direction": "down"}),
    Page("chapter_publish", "chapter", ("post",), {"published": "0"}),
    Page("chapter_delete", "chapter", BOTH, {}),
    Page("questionnaire_edit", "chapter", BOTH, {**SETTINGS, "late": "accept"}),
    Page("questionnaire_delete", "chapter", BOTH, {}),
    Page(
        "question_create",
        "chapter",
        BOTH,
        {"key": "added", "prompt": "New?", "points": "1", **_choice_rows()},
    ),
    Page(
        "question_edit",
        "question",
        BOTH,
        {"key": "pick", "prompt": "Changed?", "points": "3", **_choice_rows()},
    ),
    Page("question_move", "question", ("post",), {"direction": "up"}),
    Page("question_duplicate", "question", ("post",), {}),
    Page("question_remove", "question", ("post",), {}),
]
ROLES = ["anonymous", "outsider", "student", "ta", "instructor"]


@pytest.fixture
def pick(cast):
    """The question the question pages work on (second of two, so it can move up); the cast's
    chapter gets a second one after it, so it can move down."""
    ChapterFactory(
        course=cast.course, slug="second", position=cast.questionnaire.chapter.position + 1
    )
    choice_question(cast.questionnaire, kind="single", correct=[True, False], key="first")
    return choice_question(cast.questionnaire, kind="single", correct=[False, True], key="pick")


def url_for(page: Page, cast, question) -> str:
    course, chapter = cast.course.slug, cast.questionnaire.chapter.slug
    args = {
        "site": [],
        "course": [course],
        "chapter": [course, chapter],
        "question": [course, chapter, question.pk],
    }[page.scope]
    url = reverse(page.name, args=args)
    return url + "?kind=single" if page.name == "question_create" else url


def snapshot() -> list[object]:
    """Everything authoring could change, to show a refused request changed nothing."""
    return [
        list(Course.objects.values_list("slug", "title", "enrolment").order_by("slug")),
        list(Chapter.objects.values_list("slug", "title", "position", "published").order_by("id")),
        list(Questionnaire.objects.values_list("title", "max_attempts", "late").order_by("id")),
        list(Question.objects.values_list("key", "prompt", "position", "archived").order_by("id")),
        list(Choice.objects.values_list("id", "text", "is_correct").order_by("id")),
    ]


def client_as(role: str, cast, client):
    if role != "anonymous":
        client.force_login(getattr(cast, role))
    return client


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_only_instructors_may_use_the_course_editor(cast, pick, client, page, role, method):
    url = url_for(page, cast, pick)
    before = snapshot()
    client = client_as(role, cast, client)

    response = getattr(client, method)(url, page.post if method == "post" else None)

    if role == "anonymous":
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))
    elif method not in page.methods:
        assert response.status_code == 405
    elif role != "instructor" or page.scope == "site":
        # Teaching a course does not let one create courses; that takes a site permission.
        assert response.status_code in (403, 404)
    elif method == "get":
        assert response.status_code == 200
    else:
        assert response.status_code == 302
    changed = snapshot() != before
    instructor_post = role == "instructor" and method == "post" and method in page.methods
    assert changed == (instructor_post and page.scope != "site")


@pytest.mark.parametrize("role", ["outsider", "student", "ta"])
def test_tas_and_students_get_403_not_a_login_page(cast, pick, client, role):
    client = client_as(role, cast, client)

    for page in PAGES:
        if page.scope == "site" or "post" not in page.methods:
            continue
        response = client.post(url_for(page, cast, pick), page.post)
        assert response.status_code == 403, page.name


def test_a_user_with_the_permission_may_create_courses(cast, client):
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="add_course"))
    client.force_login(user)

    assert client.get(reverse("course_create")).status_code == 200


def test_a_superuser_may_create_courses_and_edit_any_course(cast, client):
    client.force_login(UserFactory(is_superuser=True))

    assert client.get(reverse("course_create")).status_code == 200
    assert client.get(reverse("course_authoring", args=[cast.course.slug])).status_code == 200


def test_the_course_page_offers_the_editor_to_instructors_only(cast, client):
    url = reverse("course_detail", args=[cast.course.slug])
    editor = reverse("course_authoring", args=[cast.course.slug]).encode()

    for role, shown in [("student", False), ("ta", False), ("instructor", True)]:
        client.force_login(getattr(cast, role))
        assert (editor in client.get(url).content) is shown, role


def test_the_chapter_page_offers_edit_links_to_instructors_only(cast, client):
    args = [cast.course.slug, cast.questionnaire.chapter.slug]
    url = reverse("chapter_detail", args=args)
    links = [reverse("chapter_edit", args=args), reverse("questionnaire_edit", args=args)]

    for role, shown in [("student", False), ("ta", False), ("instructor", True)]:
        client.force_login(getattr(cast, role))
        content = client.get(url).content.decode()
        assert all((link in content) is shown for link in links), role
