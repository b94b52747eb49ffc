"""Who may author assignments: every authoring URL, asked by each of the cast, by GET and POST.

Instructors change content; TAs review and grade but get a 403 here; students a 403; outsiders
learn nothing about an assignment (404) and are told to enrol for a course's pages (403);
anonymous visitors are sent to log in.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import reverse

from grader.models import Assignment, Baseline
from tests.grader.factories import (
    AssignmentFactory,
    BaselineFactory,
    BaselineRunFactory,
    DatasetFactory,
)

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Endpoint:
    name: str
    methods: tuple[str, ...]
    scope: str  # "assignment": outsiders get a 404; "course": a 403 (the course is public)

    def url(self, world: World) -> str:
        args: dict[str, list[object]] = {
            "assignment_create": [world.course, world.chapter],
            "assignment_edit": [world.slug],
            "assignment_publish": [world.slug],
            "baseline_create": [world.slug],
            "baseline_edit": [world.slug, world.baseline_id],
            "baseline_delete": [world.slug, world.baseline_id],
            "assignment_baselines_run": [world.slug],
            "assignment_baselines_status": [world.slug],
            "baseline_run_detail": [world.slug, world.run_id],
            "course_datasets": [world.course],
            "dataset_upload": [world.course],
            "dataset_detail": [world.course, world.dataset_id],
            "dataset_samples": [world.course, world.dataset_id],
        }
        return reverse(self.name, args=args[self.name])


ENDPOINTS = [
    Endpoint("assignment_create", ("GET", "POST"), "course"),
    Endpoint("assignment_edit", ("GET", "POST"), "assignment"),
    Endpoint("assignment_publish", ("POST",), "assignment"),
    Endpoint("baseline_create", ("GET", "POST"), "assignment"),
    Endpoint("baseline_edit", ("GET", "POST"), "assignment"),
    Endpoint("baseline_delete", ("POST",), "assignment"),
    Endpoint("assignment_baselines_run", ("POST",), "assignment"),
    Endpoint("assignment_baselines_status", ("GET",), "assignment"),
    Endpoint("baseline_run_detail", ("GET",), "assignment"),
    Endpoint("course_datasets", ("GET",), "course"),
    Endpoint("dataset_upload", ("GET", "POST"), "course"),
    Endpoint("dataset_detail", ("GET",), "course"),
    Endpoint("dataset_samples", ("GET",), "course"),
]
ROLES = ["anonymous", "outsider", "student", "ta", "instructor"]


@dataclass(frozen=True)
class World:
    course: str
    chapter: str
    slug: str
    baseline_id: int
    run_id: int
    dataset_id: int


@pytest.fixture
def world(cast) -> World:
    dataset = DatasetFactory(created_by=cast.instructor)
    assignment = AssignmentFactory(
        chapter=cast.questionnaire.chapter, slug="digits", dataset=dataset, published=False
    )
    Assignment.objects.filter(pk=assignment.pk).update(published=True)
    baseline = BaselineFactory(assignment=assignment, name="Majority")
    run = BaselineRunFactory(baseline=baseline)
    return World(
        course=cast.course.slug,
        chapter=cast.questionnaire.chapter.slug,
        slug=assignment.slug,
        baseline_id=baseline.pk,
        run_id=run.pk,
        dataset_id=dataset.pk,
    )


def expected_status(endpoint: Endpoint, role: str, method: str) -> int | tuple[int, ...]:
    if role == "anonymous":
        return 302  # to the login page
    if role == "outsider":
        return 404 if endpoint.scope == "assignment" else 403
    if role in ("student", "ta"):
        return 403
    # The instructor: a page, a form shown again with its errors, or a redirect after acting.
    return (200, 302) if method == "POST" else 200


CASES = [
    pytest.param(endpoint, role, method, id=f"{endpoint.name}-{method}-{role}")
    for endpoint in ENDPOINTS
    for method in endpoint.methods
    for role in ROLES
]


@pytest.mark.parametrize(("endpoint", "role", "method"), CASES)
def test_authoring_permissions(client, cast, world, endpoint, role, method):
    if role != "anonymous":
        client.force_login(getattr(cast, role))
    url = endpoint.url(world)

    response = client.get(url) if method == "GET" else client.post(url, {})

    expected = expected_status(endpoint, role, method)
    allowed = expected if isinstance(expected, tuple) else (expected,)
    assert response.status_code in allowed
    if role == "anonymous":
        assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("role", ["outsider", "student", "ta"])
def test_nobody_but_an_instructor_changes_anything(client, cast, world, role):
    client.force_login(getattr(cast, role))
    for endpoint in ENDPOINTS:
        if "POST" in endpoint.methods:
            client.post(endpoint.url(world), {"published": "0", "name": "Changed", "code": "x=1"})
    assignment = Assignment.objects.get(slug=world.slug)
    assert assignment.published
    assert list(Baseline.objects.values_list("name", flat=True)) == ["Majority"]
    assert Assignment.objects.count() == 1


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.methods == ("POST",)], ids=lambda e: e.name
)
def test_actions_are_post_only(client, cast, world, endpoint):
    client.force_login(cast.instructor)
    assert client.get(endpoint.url(world)).status_code == 405


def test_a_student_cannot_learn_of_a_draft_through_its_editor(client, cast, world):
    Assignment.objects.filter(slug=world.slug).update(published=False)
    client.force_login(cast.student)
    assert client.get(reverse("assignment_edit", args=[world.slug])).status_code == 404


def test_another_courses_dataset_is_a_404(client, cast, world):
    theirs = DatasetFactory(created_by=None)
    theirs.created_by_id = cast.outsider.pk
    theirs.save(update_fields=["created_by"])
    client.force_login(cast.instructor)
    url = reverse("dataset_detail", args=[world.course, theirs.pk])
    assert client.get(url).status_code == 404
