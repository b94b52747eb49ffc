from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import jsonschema
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from courses.course_folder import (
    CourseFolderError,
    course_folder_export,
    course_folder_import,
    course_folder_parse,
    course_spec_from_db,
)
from courses.course_format import (
    course_format_schema,
    split_front_matter,
    yaml_dump,
    yaml_load,
)
from courses.models import (
    Answer,
    Attempt,
    Chapter,
    Choice,
    Course,
    Enrolment,
    Question,
    Questionnaire,
    RubricItem,
)
from grader.metrics import METRICS
from grader.models import Assignment, Baseline
from tests.factories import CourseFactory, UserFactory
from tests.grader.factories import AssignmentFactory, DatasetFactory, SubmissionFactory

pytestmark = pytest.mark.django_db
DEMO = Path(settings.BASE_DIR) / "demo" / "course"
FIRST = "chapters/01-first-model"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def mnist(db):
    """A tiny stand-in for the built-in dataset the demo assignment names."""
    return DatasetFactory(slug="mnist10k", n_classes=10)


@pytest.fixture
def folder(tmp_path, mnist) -> Path:
    target = tmp_path / "course"
    shutil.copytree(DEMO, target)
    return target


def edit_yaml(path: Path, change) -> None:
    data = yaml_load(path.read_text())
    change(data)
    path.write_text(yaml_dump(data))


def edit_front_matter(path: Path, change) -> None:
    meta, body = split_front_matter(path.read_text())
    data = yaml_load(meta)
    change(data)
    path.write_text(f"---\n{yaml_dump(data)}---\n{body}")


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def answer(question: Question) -> Answer:
    attempt = Attempt.objects.create(
        questionnaire=question.questionnaire, user=UserFactory(), number=1
    )
    return Answer.objects.create(attempt=attempt, question=question, response="x")


def import_errors(root: Path, **kwargs) -> list[str]:
    with pytest.raises(CourseFolderError) as caught:
        course_folder_import(root, **kwargs)
    return caught.value.errors


# --- The format and its schema -----------------------------------------------------------------


def test_the_demo_course_has_three_chapters_every_question_kind_and_an_assignment():
    spec = course_folder_parse(DEMO)

    assert len(spec.chapters) >= 3
    for chapter in spec.chapters:
        assert chapter.questionnaire is not None
        kinds = Counter(q.kind for q in chapter.questionnaire.questions)
        assert sum(kinds.values()) >= 10, chapter.slug
        assert set(kinds) == set(Question.Kind.values), chapter.slug
    assert [a.uid for a in spec.assignments] == ["mnist-ten-digits"]
    assert {b.name for b in spec.assignments[0].baselines} == {"Pixel similarity", "Linear model"}


def test_every_yaml_file_of_the_demo_validates_against_the_json_schema():
    schema = course_format_schema()
    jsonschema.Draft202012Validator.check_schema(schema)

    def check(data, kind):
        jsonschema.validate(data, {**schema, "$ref": f"#/$defs/{kind}"})

    check(yaml_load((DEMO / "course.yaml").read_text()), "course")
    for path in DEMO.glob("chapters/*/chapter.md"):
        check(yaml_load(split_front_matter(path.read_text())[0]), "chapter")
    for path in DEMO.glob("chapters/*/questionnaire.yaml"):
        check(yaml_load(path.read_text()), "questionnaire")
    for path in DEMO.glob("assignments/*/assignment.yaml"):
        check(yaml_load(path.read_text()), "assignment")
    with pytest.raises(jsonschema.ValidationError):
        check({"id": "q", "kind": "single", "prompt": "?", "choices": [{"text": "a"}]}, "question")


def test_the_schema_allows_exactly_the_choices_the_models_allow():
    defs = course_format_schema()["$defs"]
    question, assignment = defs["question"]["properties"], defs["assignment"]["properties"]
    questionnaire = defs["questionnaire"]["properties"]

    assert question["kind"]["enum"] == Question.Kind.values
    assert question["tolerance_mode"]["enum"] == Question.ToleranceMode.values
    assert questionnaire["counts"]["enum"] == Questionnaire.Counts.values
    assert questionnaire["reveal"]["enum"] == Questionnaire.Reveal.values
    assert questionnaire["late"]["enum"] == Questionnaire.Late.values
    assert defs["course"]["properties"]["enrolment"]["enum"] == Course.Enrolment.values
    assert assignment["metric"]["enum"] == list(METRICS)
    assert assignment["pass_rule"]["enum"] == Assignment.PassRule.values


# --- Import: idempotent, in place, all or nothing ----------------------------------------------


def test_importing_twice_changes_nothing(folder):
    _, first = course_folder_import(folder)
    stamps = {q.pk: q.updated_at for q in Question.objects.all()}
    assignment_stamp = Assignment.objects.get().updated_at

    _, second = course_folder_import(folder)

    assert first.created > 0 and not second.changed and second.changes == []
    assert {q.pk: q.updated_at for q in Question.objects.all()} == stamps
    assert Assignment.objects.get().updated_at == assignment_stamp
    assert Course.objects.count() == 1


def test_the_demo_assignment_is_imported_with_its_baselines_and_pass_rule(folder, mnist):
    course_folder_import(folder)

    assignment = Assignment.objects.get(uid="mnist-ten-digits")
    assert assignment.chapter.uid == "under-the-hood" and assignment.dataset == mnist
    assert assignment.pass_rule == "beat_baseline"
    assert assignment.pass_baseline.name == "Linear model"
    assert "tt.save_predictions(predictions)" in assignment.starter_code
    assert assignment.baselines.get(name="Pixel similarity").filename == "pixel_similarity.py"


def test_an_edit_updates_only_what_changed(folder):
    course_folder_import(folder)
    edit_yaml(folder / FIRST / "questionnaire.yaml", lambda d: d.update(max_attempts=5))

    _, report = course_folder_import(folder)

    assert report.updated == 1 and report.created == 0
    assert report.changes == ["updated questionnaire of first-model"]
    assert Chapter.objects.get(uid="first-model").questionnaire.max_attempts == 5


def test_choice_ids_survive_a_reimport(folder):
    course_folder_import(folder)
    ids = set(Choice.objects.values_list("id", flat=True))
    course_folder_import(folder)
    assert set(Choice.objects.values_list("id", flat=True)) == ids


def test_renaming_slugs_and_titles_updates_in_place_by_id(folder, mnist):
    course_folder_import(folder)
    chapter = Chapter.objects.get(uid="first-model")
    assignment = Assignment.objects.get(uid="mnist-ten-digits")
    submission = SubmissionFactory(assignment=assignment)
    edit_front_matter(
        folder / FIRST / "chapter.md", lambda d: d.update(slug="your-first-model", title="New")
    )
    edit_yaml(
        folder / "assignments/mnist-ten-digits/assignment.yaml",
        lambda d: d.update(slug="all-ten-digits", title="All ten"),
    )

    course_folder_import(folder)

    chapter.refresh_from_db()
    assert (chapter.slug, chapter.title, chapter.uid) == ("your-first-model", "New", "first-model")
    assignment.refresh_from_db()
    assert (assignment.slug, assignment.title) == ("all-ten-digits", "All ten")
    assert assignment.submissions.get() == submission


def test_two_chapters_can_swap_slugs(folder):
    course_folder_import(folder)
    ids = dict(Chapter.objects.values_list("uid", "pk"))
    edit_front_matter(folder / FIRST / "chapter.md", lambda d: d.update(slug="under-the-hood"))
    edit_front_matter(
        folder / "chapters/02-under-the-hood/chapter.md", lambda d: d.update(slug="first-model")
    )

    course_folder_import(folder)

    assert Chapter.objects.get(slug="under-the-hood").pk == ids["first-model"]
    assert Chapter.objects.get(slug="first-model").pk == ids["under-the-hood"]


def test_reimport_keeps_answers_and_archives_a_removed_answered_question(folder):
    course_folder_import(folder)
    answered = Question.objects.get(key="why-whole-first")
    unanswered = Question.objects.get(key="purpose-of-validation-set")
    given = answer(answered)
    path = folder / FIRST / "questionnaire.yaml"
    original = path.read_text()

    def remove_two(data):
        data["questions"] = [
            q for q in data["questions"] if q["id"] not in {answered.key, unanswered.key}
        ]
        data["questions"][0]["prompt"] = "Edited prompt"

    edit_yaml(path, remove_two)
    _, report = course_folder_import(folder)

    answered.refresh_from_db()
    assert answered.archived and report.archived == 1
    assert Answer.objects.filter(pk=given.pk).exists()
    assert not Question.objects.filter(pk=unanswered.pk).exists()
    assert f"archived question first-model/{answered.key}" in report.changes
    assert answered not in answered.questionnaire.questions.filter(archived=False)

    path.write_text(original)
    course_folder_import(folder)

    answered.refresh_from_db()
    assert not answered.archived and answered.position == 0
    assert answered.answers.get() == given


def test_removing_a_chapter_with_student_work_is_refused(folder):
    course_folder_import(folder)
    answer(Question.objects.filter(questionnaire__chapter__uid="first-model").first())
    shutil.rmtree(folder / FIRST)

    errors = import_errors(folder)

    assert any("'first-model' is missing from the folder" in e for e in errors), errors
    assert Chapter.objects.filter(uid="first-model").exists()


def test_removing_a_chapter_without_student_work_deletes_it(folder):
    course_folder_import(folder)
    shutil.rmtree(folder / FIRST)

    _, report = course_folder_import(folder)

    assert "deleted chapter first-model" in report.changes
    assert not Chapter.objects.filter(uid="first-model").exists()


def test_removing_an_assignment_with_submissions_is_refused_and_without_deletes_it(folder):
    course_folder_import(folder)
    assignment = Assignment.objects.get()
    SubmissionFactory(assignment=assignment)
    shutil.rmtree(folder / "assignments")

    errors = import_errors(folder)
    assert errors == [
        "assignments: the assignment 'mnist-ten-digits' is missing from the folder, but students "
        "submitted to it. Put it back, with published: false to hide it."
    ]

    assignment.submissions.all().delete()
    course_folder_import(folder)
    assert not Assignment.objects.exists()


def test_a_dry_run_reports_and_changes_nothing(folder):
    course, report = course_folder_import(folder, dry_run=True)

    assert course.slug == "practical-deep-learning" and report.created > 0
    assert not Course.objects.exists() and not Assignment.objects.exists()


# --- Errors: every one, naming the file and the field ------------------------------------------


def test_schema_errors_name_the_file_and_field_and_all_are_reported(folder):
    def break_questions(data):
        data["questions"][2]["choices"] = data["questions"][2]["choices"][:1]
        del data["questions"][0]["prompt"]
        data["questions"][1]["promt"] = "typo"
        data["max_attempts"] = -1

    edit_yaml(folder / FIRST / "questionnaire.yaml", break_questions)
    edit_yaml(folder / "course.yaml", lambda d: d.update(enrolment="closed"))
    edit_front_matter(
        folder / "chapters/02-under-the-hood/chapter.md", lambda d: d.update(id="Bad Id")
    )

    errors = import_errors(folder)

    q = f"{FIRST}/questionnaire.yaml"
    assert f"{q}: questions[2].choices: at least 2 items required" in errors
    assert f"{q}: questions[0].prompt: required" in errors
    assert f"{q}: questions[1].promt: unknown field" in errors
    assert f"{q}: max_attempts: must be at least 0" in errors
    assert "course.yaml: enrolment: must be one of: open, invite" in errors
    assert (
        "chapters/02-under-the-hood/chapter.md: id: must be an id: letters, digits, hyphens "
        "and underscores"
    ) in errors
    assert not Course.objects.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("questions: [", "not valid YAML: line"),
        ("title: a\ntitle: b\n", "duplicate key 'title'"),
        ("due: 2027-06-30\n", "due: must be an ISO 8601 date and time with a UTC offset"),
        ("due: 2027-06-30T12:00:00\n", "due: must be an ISO 8601 date and time"),
        ("a: &x [1]\nb: *x\n", "aliases (*name) are not allowed"),
        ("- just\n- a list\n", "(file): must be a mapping"),
        (
            "questions:\n  - {id: q, kind: single, prompt: '?', answer: true,"
            " choices: [{text: a, correct: true}, {text: b}]}\n",
            "questions[0].answer: does not apply to a single question",
        ),
        (
            "questions:\n  - {id: q, kind: single, prompt: '?',"
            " choices: [{text: a, correct: true}, {text: b, correct: true}]}\n",
            "needs exactly one correct choice (has 2)",
        ),
        (
            "questions:\n  - {id: q, kind: numeric, prompt: '?', answer: yes}\n",
            "questions[0].answer: must be a number",
        ),
        (
            "questions:\n  - {id: q, kind: short_text, prompt: '?'}\n",
            "questions[0]: a short_text question needs 'accepted' or 'regex'",
        ),
        (
            "questions:\n  - {id: q, kind: true_false, prompt: '?', answer: true}\n"
            "  - {id: q, kind: true_false, prompt: '?', answer: false}\n",
            "questions: two questions have the id 'q'",
        ),
    ],
)
def test_a_broken_questionnaire_is_reported_and_imports_nothing(folder, text, message):
    path = folder / FIRST / "questionnaire.yaml"
    path.write_text(text)

    errors = import_errors(folder)

    assert any(e.startswith(f"{FIRST}/questionnaire.yaml: ") and message in e for e in errors), (
        errors
    )
    assert not Course.objects.exists()


def test_an_oversized_file_is_refused_before_parsing(folder):
    (folder / FIRST / "questionnaire.yaml").write_text("# " + "x" * (1024 * 1024))
    assert import_errors(folder) == [f"{FIRST}/questionnaire.yaml: larger than 1024 KB"]


def test_a_chapter_without_front_matter_is_refused(folder):
    (folder / FIRST / "chapter.md").write_text("# No front matter\n")
    assert import_errors(folder) == [
        f"{FIRST}/chapter.md: must start with YAML front matter between --- lines"
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(chapter="nowhere"), "chapter: no chapter has the id 'nowhere'"),
        (lambda d: d.update(pass_baseline="Nobody"), "pass_baseline: must be the name of one"),
        (lambda d: d.pop("dataset"), "dataset: required for a published assignment"),
        (lambda d: d.update(dataset="missing"), "dataset: no dataset 'missing' is registered"),
        (lambda d: d.update(dataset_version=7), "no dataset 'mnist10k' version 7"),
        (lambda d: d.update(metric="mse"), "metric: mse does not suit the classification"),
        (lambda d: d.update(pass_rule="threshold"), "pass_threshold: required"),
        (
            lambda d: d["baselines"][0].update(file="baselines/gone.py"),
            "baselines[0].file: no file baselines/gone.py",
        ),
        (
            lambda d: d["baselines"][0].update(file="../../course.yaml"),
            "baselines[0].file: must be a file in baselines/",
        ),
    ],
)
def test_a_broken_assignment_is_reported_and_imports_nothing(folder, change, message):
    path = folder / "assignments/mnist-ten-digits/assignment.yaml"
    edit_yaml(path, change)

    errors = import_errors(folder)

    prefix = "assignments/mnist-ten-digits/assignment.yaml: "
    assert any(e.startswith(prefix) and message in e for e in errors), errors
    assert not Course.objects.exists()


def test_an_assignment_id_of_another_course_is_refused(folder):
    AssignmentFactory(slug="mnist-ten-digits", chapter__course=CourseFactory(slug="other"))

    errors = import_errors(folder)

    assert any(
        "id: 'mnist-ten-digits' is taken by an assignment of the course other" in e for e in errors
    ), errors


def test_a_folder_for_another_course_or_an_existing_one_is_refused(folder):
    other = CourseFactory(slug="other")
    errors = import_errors(folder, course=other)
    assert "this folder is the course 'practical-deep-learning', not 'other'" in errors[0]

    course_folder_import(folder)
    errors = import_errors(folder, new=True)
    assert "a course 'practical-deep-learning' exists already" in errors[0]


def test_the_importing_user_becomes_an_instructor_of_a_new_course(folder):
    user = UserFactory()

    course, _ = course_folder_import(folder, new=True, instructor=user)

    assert Enrolment.objects.get(user=user, course=course).role == "instructor"


# --- Export and the round trip -----------------------------------------------------------------


def test_the_demo_exports_to_exactly_its_own_files(folder, tmp_path):
    course, _ = course_folder_import(folder)

    course_folder_export(course=course, target=tmp_path / "out")

    expected = {k: v for k, v in tree(DEMO).items() if "/solutions/" not in k}
    assert tree(tmp_path / "out") == expected
    assert course_spec_from_db(course) == course_folder_parse(DEMO)


def rich_course(folder: Path, mnist) -> None:
    """Every optional field away from its default, to see each one survive the round trip."""
    DatasetFactory(slug="mnist10k", n_classes=10, seed=2)  # mnist is now version 1 of 2

    def course(data):
        data.update(enrolment="invite", invite_code="s3cret", description="Line one\nline two\n")

    def questionnaire(data):
        data.update(
            title="Quiz", max_attempts=2, counts="last", reveal="after_due_date", late="accept"
        )
        data["due"] = "2027-06-30T23:59:00+02:00"
        for q in data["questions"]:
            if q["kind"] == "free_text":
                q["rubric"] = [{"text": "Names the leak", "points": 1.5}, {"text": "Fix"}]
            if q["kind"] == "numeric":
                q["points"] = 0.25

    def assignment(data):
        data.update(
            slug="ten-digits",
            published=False,
            dataset_version=mnist.version,
            metric="macro_f1",
            public_fraction=0.3,
            wall_seconds=30,
            memory_mb=512,
            needs_gpu=True,
            pass_rule="threshold",
            pass_threshold=0.9,
            due="2027-07-01T12:00:00+00:00",
            position=3,
        )
        del data["pass_baseline"]

    edit_yaml(folder / "course.yaml", course)
    edit_yaml(folder / FIRST / "questionnaire.yaml", questionnaire)
    edit_yaml(folder / "assignments/mnist-ten-digits/assignment.yaml", assignment)
    edit_front_matter(
        folder / FIRST / "chapter.md", lambda d: d.update(slug="start", published=False)
    )
    (folder / "chapters/02-under-the-hood/questionnaire.yaml").unlink()


def test_export_import_export_gives_identical_files(folder, mnist, tmp_path):
    rich_course(folder, mnist)
    course, _ = course_folder_import(folder)
    first, second = tmp_path / "first", tmp_path / "second"
    course_folder_export(course=course, target=first)
    spec = course_folder_parse(folder)

    Course.objects.all().delete()
    course, _ = course_folder_import(first)
    course_folder_export(course=course, target=second)
    _, again = course_folder_import(second)

    assert tree(first) == tree(second)
    assert course_folder_parse(first) == spec
    assert not again.changed
    assert RubricItem.objects.filter(text="Names the leak", points="1.5").exists()
    assert "dataset_version: 1\n" in (first / "assignments/ten-digits/assignment.yaml").read_text()
    assert not (first / "chapters/02-under-the-hood/questionnaire.yaml").exists()
    assert (
        (first / "chapters/01-start/chapter.md")
        .read_text()
        .startswith(
            "---\nid: first-model\nslug: start\ntitle: Train your first model\npublished: false\n---\n"
        )
    )


def test_export_writes_multiline_text_as_literal_blocks(folder, tmp_path):
    course, _ = course_folder_import(folder)
    course_folder_export(course=course, target=tmp_path / "out")

    text = (tmp_path / "out" / FIRST / "questionnaire.yaml").read_text()

    assert "    tests: |\n      def test_all_correct():\n" in text


def test_export_refuses_a_folder_that_is_not_empty_unless_forced(folder, tmp_path):
    course, _ = course_folder_import(folder)
    target = tmp_path / "out"
    (target / "chapters" / "09-stale").mkdir(parents=True)
    (target / "README.md").write_text("mine")

    with pytest.raises(CourseFolderError, match="not empty"):
        course_folder_export(course=course, target=target)
    course_folder_export(course=course, target=target, force=True)

    assert not (target / "chapters" / "09-stale").exists()
    assert (target / "README.md").read_text() == "mine"
    assert (target / "course.yaml").exists()


# --- Commands ----------------------------------------------------------------------------------


def test_the_commands_import_report_and_export(folder, tmp_path, capsys):
    call_command("import_course", str(folder), "--dry-run")
    assert "Dry run, nothing written." in capsys.readouterr().out
    assert not Course.objects.exists()

    call_command("import_course", str(folder))
    assert "practical-deep-learning: " in capsys.readouterr().out

    call_command("export_course", "practical-deep-learning", str(tmp_path / "out"))
    assert (tmp_path / "out" / "course.yaml").exists()
    with pytest.raises(CommandError, match="not empty"):
        call_command("export_course", "practical-deep-learning", str(tmp_path / "out"))
    call_command("export_course", "practical-deep-learning", str(tmp_path / "out"), "--force")


def test_the_import_command_lists_every_problem(folder):
    edit_yaml(folder / "course.yaml", lambda d: d.update(title=""))
    edit_front_matter(folder / FIRST / "chapter.md", lambda d: d.pop("title"))

    with pytest.raises(CommandError) as caught:
        call_command("import_course", str(folder))

    message = str(caught.value)
    assert "nothing changed" in message
    assert "course.yaml: title: must not be empty" in message
    assert f"{FIRST}/chapter.md: title: required" in message


def test_demo_load_registers_the_datasets_and_creates_the_demo_users_once(capsys):
    call_command("demo_load")
    call_command("demo_load")

    out = capsys.readouterr().out
    assert out.count("Demo users created: student, instructor") == 1
    assert "0 created, 0 updated" in out and "Demo users created: none" in out
    from accounts.models import User

    student = User.objects.get(username="student")
    assert student.check_password("topdown-demo")
    assert student.enrolments.get().role == "student"
    assert User.objects.get(username="instructor").enrolments.get().role == "instructor"
    assignment = Assignment.objects.get(uid="mnist-ten-digits")
    assert assignment.published and assignment.dataset.slug == "mnist10k"
    assert Baseline.objects.filter(assignment=assignment).count() == 2
