"""The shared cast: every permission test can ask what the outsider (or other student) may do."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.core.cache import cache

from accounts.models import User
from courses.models import Course, Questionnaire, Role
from tests.factories import (
    CourseFactory,
    EnrolmentFactory,
    QuestionnaireFactory,
    UserFactory,
)


@dataclass
class Cast:
    course: Course
    questionnaire: Questionnaire
    student: User
    other_student: User
    ta: User
    instructor: User
    outsider: User


@pytest.fixture(autouse=True)
def _empty_cache():
    # The cache (Redis in `make test`) outlives each test's transaction and each run's test
    # database, whose ids start again at 1: a ranking or count cached under "assignment 1" by
    # an earlier test or run must not answer for this one.
    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 is slow by design; the tests hash hundreds of passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def course(db) -> Course:
    return CourseFactory(slug="deep-learning", title="Deep Learning")


@pytest.fixture
def questionnaire(course) -> Questionnaire:
    return QuestionnaireFactory(chapter__course=course, chapter__slug="first-model")


@pytest.fixture
def cast(course, questionnaire) -> Cast:
    def member(username: str, role: str) -> User:
        user = UserFactory(username=username)
        EnrolmentFactory(user=user, course=course, role=role)
        return user

    return Cast(
        course=course,
        questionnaire=questionnaire,
        student=member("student", Role.STUDENT),
        other_student=member("other", Role.STUDENT),
        ta=member("ta", Role.TA),
        instructor=member("instructor", Role.INSTRUCTOR),
        outsider=UserFactory(username="outsider"),
    )


@pytest.fixture
def student(cast) -> User:
    return cast.student


@pytest.fixture
def client_for(client):
    """``client_for(user)`` gives a test client logged in as that user."""

    def login(user: User):
        client.force_login(user)
        return client

    return login
