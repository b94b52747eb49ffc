from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from courses.course_folder import CourseFolderError, course_folder_import, course_folder_parse
from courses.models import Answer, Chapter, Choice, Course, Question
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
DEMO = Path(settings.BASE_DIR) / "demo" / "course"


@pytest.fixture
def folder(tmp_path) -> Path:
    target = tmp_path / "course"
    shutil.copytree(DEMO, target)
    return target


def questionnaire_file(folder: Path, chapter: str = "01-first-model") -> Path:
    return folder / "chapters" / chapter / "questionnaire.toml"


def test_the_demo_course_has_three_chapters_and_every_question_kind():
    spec = course_folder_parse(DEMO)

    assert len(spec.chapters) >= 3
    for chapter in spec.chapters:
        assert chapter.questionnaire is not None
        kinds = Counter(q.kind for q in chapter.questionnaire.questions)
        assert sum(kinds.values()) >= 10, chapter.slug
        assert set(kinds) == set(Question.Kind.values), chapter.slug


def test_importing_twice_changes_nothing(folder):
    _, first = course_folder_import(folder)
    stamps = {q.pk: q.updated_at for q in Question.objects.all()}

    _, second = course_folder_import(folder)

    assert first.created > 0 and not second.changed
    assert {q.pk: q.updated_at for q in Question.objects.all()} == stamps
    assert Course.objects.count() == 1


def test_an_edit_updates_only_what_changed(folder):
    course_folder_import(folder)
    path = questionnaire_file(folder)
    text = path.read_text()
    path.write_text(text.replace("max_attempts = 0", "max_attempts = 5", 1))

    _, report = course_folder_import(folder)

    assert report.updated == 1 and report.created == 0
    assert Chapter.objects.get(slug="first-model").questionnaire.max_attempts == 5


def test_choice_ids_survive_a_reimport(folder):
    course_folder_import(folder)
    ids = set(Choice.objects.values_list("id", flat=True))
    course_folder_import(folder)
    assert set(Choice.objects.values_list("id", flat=True)) == ids


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("kind = ", "kind = 'essay' #", 1), "'kind' must be one of"),
        (lambda t: t + "\n[[questions]]\nkey = 'Bad Key'\n", "is not a slug"),
        (lambda t: t + "\nthis is not toml", "questionnaire.toml"),
        (lambda t: t.replace("max_attempts = 0", "max_attempts = -1"), "whole number"),
    ],
)
def test_a_broken_file_is_reported_and_imports_nothing(folder, edit, message):
    path = questionnaire_file(folder)
    path.write_text(edit(path.read_text()))

    with pytest.raises(CourseFolderError, match=message):
        course_folder_import(folder)

    assert not Course.objects.exists()


def test_a_single_choice_question_needs_exactly_one_correct_choice(tmp_path):
    (tmp_path / "chapters" / "01-a").mkdir(parents=True)
    (tmp_path / "course.toml").write_text('slug = "c"\ntitle = "C"\n')
    (tmp_path / "chapters" / "01-a" / "chapter.md").write_text(
        '+++\nslug = "a"\ntitle = "A"\n+++\nHi'
    )
    (tmp_path / "chapters" / "01-a" / "questionnaire.toml").write_text(
        '[[questions]]\nkey = "q"\nkind = "single"\nprompt = "?"\n'
        'choices = [{text = "a", correct = true}, {text = "b", correct = true}]\n'
    )
    with pytest.raises(CourseFolderError, match="exactly one correct"):
        course_folder_import(tmp_path)


def test_a_chapter_without_front_matter_is_refused(folder):
    (folder / "chapters" / "01-first-model" / "chapter.md").write_text("# No front matter\n")
    with pytest.raises(CourseFolderError, match="front matter"):
        course_folder_import(folder)


def test_removing_an_answered_question_is_refused(folder):
    course_folder_import(folder)
    question = Question.objects.filter(questionnaire__chapter__slug="first-model").first()
    from courses.models import Attempt

    attempt = Attempt.objects.create(
        questionnaire=question.questionnaire, user=UserFactory(), number=1
    )
    Answer.objects.create(attempt=attempt, question=question, response="x")
    path = questionnaire_file(folder)
    path.write_text(path.read_text().replace(f'key = "{question.key}"', 'key = "renamed"'))

    with pytest.raises(CourseFolderError, match="already answered"):
        course_folder_import(folder)

    assert Question.objects.filter(pk=question.pk).exists()


def test_demo_load_creates_the_demo_users_once(capsys):
    call_command("demo_load")
    call_command("demo_load")

    out = capsys.readouterr().out
    assert out.count("Demo users created: student, instructor") == 1
    assert "Demo users created: none" in out
    from accounts.models import User

    student = User.objects.get(username="student")
    assert student.check_password("topdown-demo")
    assert student.enrolments.get().role == "student"
    assert User.objects.get(username="instructor").enrolments.get().role == "instructor"
