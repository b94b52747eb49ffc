from __future__ import annotations

from decimal import Decimal

import factory

from accounts.models import User
from courses.models import Chapter, Choice, Course, Enrolment, Question, Questionnaire, Role

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.Faker("name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.save()


class CourseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Course

    slug = factory.Sequence(lambda n: f"course-{n}")
    title = factory.Sequence(lambda n: f"Course {n}")
    description = "A course about *things*."


class EnrolmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrolment

    user = factory.SubFactory(UserFactory)
    course = factory.SubFactory(CourseFactory)
    role = Role.STUDENT


class ChapterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Chapter

    course = factory.SubFactory(CourseFactory)
    slug = factory.Sequence(lambda n: f"chapter-{n}")
    title = factory.Sequence(lambda n: f"Chapter {n}")
    body = "Some **markdown** and $x^2$."
    position = factory.Sequence(lambda n: n)


class QuestionnaireFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Questionnaire

    chapter = factory.SubFactory(ChapterFactory)


class QuestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Question

    questionnaire = factory.SubFactory(QuestionnaireFactory)
    key = factory.Sequence(lambda n: f"q-{n}")
    position = factory.Sequence(lambda n: n)
    kind = Question.Kind.SHORT_TEXT
    prompt = "What is the answer?"
    explanation = "Because."
    points = Decimal("1")
    accepted_answers = factory.LazyFunction(lambda: ["forty two"])


class ChoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Choice

    question = factory.SubFactory(QuestionFactory, kind=Question.Kind.SINGLE)
    position = factory.Sequence(lambda n: n)
    text = factory.Sequence(lambda n: f"Option {n}")
    is_correct = False


def choice_question(questionnaire: Questionnaire, *, kind: str, correct: list[bool], **kw: object):
    """A single- or multiple-choice question with one choice per flag in ``correct``."""
    question = QuestionFactory(questionnaire=questionnaire, kind=kind, accepted_answers=[], **kw)
    for i, flag in enumerate(correct):
        ChoiceFactory(question=question, position=i, is_correct=flag, text=f"Choice {i}")
    return question
