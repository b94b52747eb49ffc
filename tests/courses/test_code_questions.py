"""Code questions: the student's function against the instructor's tests, in the real sandbox."""

from __future__ import annotations

import shutil
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from courses import services
from courses.code_questions import RUNNING_FEEDBACK
from courses.course_folder import CourseFolderError, course_folder_import
from courses.models import Answer, Attempt, Question
from courses.tasks import grade_code_answers_task
from tests.factories import QuestionFactory

VISIBLE_TESTS = """
def test_all_correct():
    assert accuracy([3, 1, 4], [3, 1, 4]) == 1.0


def test_half_correct():
    assert accuracy([0, 1, 2, 3], [0, 1, 9, 9]) == 0.5


def test_none_correct():
    assert accuracy([1, 1], [0, 0]) == 0.0, "no prediction is right here"
"""

# A distinctive string in the hidden tests' names, source and assertion messages.
CANARY = "ZEBRA-CANARY-81f2"
HIDDEN_TESTS = f'''
def test_returns_a_float_zebra_canary():
    assert isinstance(accuracy([7, 7], [7, 0]), float), "{CANARY} must be a float"


def test_one_of_three_zebra_canary():
    result = accuracy([1, 2, 3], [1, 0, 0])
    assert abs(result - 1 / 3) < 1e-9, "{CANARY} expected one third, got " + repr(result)
'''

CORRECT = """
def accuracy(predictions, labels):
    print("checking", len(predictions), "predictions")  # printing is allowed
    return sum(p == y for p, y in zip(predictions, labels)) / len(predictions)
"""

# Right only when everything or nothing is right: passes test_all_correct and test_none_correct.
ALL_OR_NOTHING = """
def accuracy(predictions, labels):
    return float(predictions == labels)
"""


@pytest.fixture(scope="module")
def jobs_root():
    # Not under pytest's tmp_path: its parents are 0700, which a job's own uid cannot cross.
    root = Path(tempfile.mkdtemp(prefix="topdown-code-question-jobs-"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def _sandbox_settings(settings, jobs_root):
    settings.GRADER_JOBS_DIR = str(jobs_root)
    settings.GRADER_SANDBOX = "auto"


@pytest.fixture
def code_question(cast) -> Question:
    return QuestionFactory(
        questionnaire=cast.questionnaire,
        key="write-accuracy",
        kind=Question.Kind.CODE,
        accepted_answers=[],
        points=Decimal(2),
        prompt="Write `accuracy(predictions, labels)`.",
        starter_code="def accuracy(predictions, labels):\n    ...\n",
        visible_tests=VISIBLE_TESTS,
        hidden_tests=HIDDEN_TESTS,
        time_limit_seconds=5,
    )


@pytest.fixture
def submit_code(cast, code_question, django_capture_on_commit_callbacks):
    """Submit ``code`` as the student's answer; the grading task is captured, not run."""

    def submit(code: str | None) -> tuple[Attempt, list]:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            attempt = services.attempt_save(
                user=cast.student,
                questionnaire=cast.questionnaire,
                token=None,
                responses={code_question.id: code},
                submit=True,
            )
        return attempt, callbacks

    return submit


def grade(attempt: Attempt) -> Answer:
    services.attempt_code_answers_grade(attempt_id=attempt.id)
    return Answer.objects.select_related("attempt").get(attempt=attempt)


def visible_outcomes(answer: Answer) -> dict[str, bool]:
    return {test["name"]: test["passed"] for test in answer.details["visible"]}


def attempt_url(cast, attempt: Attempt) -> str:
    return reverse("attempt_detail", args=[cast.course.slug, attempt.id])


def test_submitting_leaves_the_code_answer_running_and_schedules_one_grading(submit_code):
    attempt, callbacks = submit_code(CORRECT)

    answer = Answer.objects.get(attempt=attempt)
    assert (answer.score, answer.is_correct, answer.feedback) == (None, None, RUNNING_FEEDBACK)
    assert answer.is_running
    assert len(callbacks) == 1


def test_the_grading_is_sent_to_the_cpu_queue(submit_code, monkeypatch):
    sent = []
    monkeypatch.setattr(
        grade_code_answers_task, "apply_async", lambda **kwargs: sent.append(kwargs)
    )
    attempt, callbacks = submit_code(CORRECT)

    callbacks[0]()

    assert sent == [{"args": [attempt.id], "queue": "cpu"}]


def test_a_correct_solution_scores_full_marks_with_every_visible_test_passed(submit_code):
    attempt, _ = submit_code(CORRECT)

    answer = grade(attempt)

    assert answer.score == Decimal(2) and answer.is_correct is True
    assert visible_outcomes(answer) == {
        "test_all_correct": True,
        "test_half_correct": True,
        "test_none_correct": True,
    }
    assert answer.details["hidden"] == {"passed": 2, "total": 2}
    assert answer.feedback == "All 5 tests passed."
    assert answer.attempt.score == Decimal(2)


def test_a_wrong_solution_gets_partial_credit_and_the_visible_assertion_messages(submit_code):
    attempt, _ = submit_code(ALL_OR_NOTHING)

    answer = grade(attempt)

    # 2 of 3 visible and 1 of 2 hidden (it returns a float, but never one third): 3/5 of 2 points
    assert answer.score == Decimal("1.20") and answer.is_correct is False
    assert visible_outcomes(answer) == {
        "test_all_correct": True,
        "test_half_correct": False,
        "test_none_correct": True,
    }
    failed = answer.details["visible"][1]["message"]
    assert "assert accuracy([0, 1, 2, 3], [0, 1, 9, 9]) == 0.5" in failed
    assert "left:  0.0" in failed and "right: 0.5" in failed
    assert answer.details["hidden"] == {"passed": 1, "total": 2}
    assert answer.feedback == "3 of 5 tests passed."
    assert answer.attempt.score == Decimal("1.20")


def test_an_exception_in_the_solution_names_its_line(submit_code):
    attempt, _ = submit_code("def accuracy(predictions, labels):\n    return 1 / 0\n")

    answer = grade(attempt)

    assert answer.score == Decimal(0)
    message = answer.details["visible"][0]["message"]
    assert message == "ZeroDivisionError: division by zero (solution.py, line 2)"


def test_hidden_tests_never_reach_the_student(cast, client_for, submit_code):
    # A solution that tries to leak the hidden tests: when it finds them, it prints them, puts
    # them in its failures, and returns wrong answers.
    leaky = """
import pathlib
SOURCE = pathlib.Path("tests.py").read_text()
LEAKING = "one_of_three" in SOURCE
if LEAKING:
    print(SOURCE)

def accuracy(predictions, labels):
    if LEAKING:
        raise AssertionError(SOURCE)
    return sum(p == y for p, y in zip(predictions, labels)) / len(predictions)
"""
    attempt, _ = submit_code(leaky)

    answer = grade(attempt)

    assert answer.details["hidden"] == {"passed": 0, "total": 2}
    assert all(visible_outcomes(answer).values())
    stored = f"{answer.details} {answer.feedback}"
    assert CANARY not in stored and "zebra_canary" not in stored
    page = client_for(cast.student).get(attempt_url(cast, attempt)).content.decode()
    assert "Hidden tests: 0 of 2 passed" in page
    assert CANARY not in page and "zebra_canary" not in page


def test_the_questionnaire_page_shows_the_visible_tests_and_the_starter_but_no_hidden_test(
    cast, client_for, code_question
):
    url = reverse("questionnaire_detail", args=[cast.course.slug, cast.questionnaire.chapter.slug])

    page = client_for(cast.student).get(url).content.decode()

    assert 'class="code-input"' in page and 'maxlength="20000"' in page
    assert "def accuracy(predictions, labels):\n    ...\n</textarea>" in page
    assert "test_half_correct" in page  # the visible tests, highlighted
    assert CANARY not in page and "zebra_canary" not in page


def test_a_syntax_error_scores_zero_with_a_clear_message(submit_code):
    attempt, _ = submit_code("def accuracy(predictions, labels)\n    return 1.0\n")

    answer = grade(attempt)

    assert answer.score == Decimal(0) and answer.is_correct is False
    message = answer.details["message"]
    assert message.startswith("Your code could not be loaded")
    assert 'File "solution.py", line 1' in message and "SyntaxError" in message
    assert "hidden tests were not run" in message
    assert answer.feedback.startswith("0 of 5 tests passed. Your code could not be loaded")


def test_an_infinite_loop_is_stopped_with_the_time_limit_message(submit_code, code_question):
    code_question.time_limit_seconds = 1
    code_question.save(update_fields=["time_limit_seconds"])
    attempt, _ = submit_code("def accuracy(predictions, labels):\n    while True:\n        pass\n")

    answer = grade(attempt)

    assert answer.score == Decimal(0)
    assert all("Your code took longer than" in t["message"] for t in answer.details["visible"])
    assert "Your code took longer than its share of the 1 s time limit" in answer.details["message"]


FORGED = (
    "import json\n"
    "FORGED = '@@topdown-code-result 0123456789abcdef0123456789abcdef ' + json.dumps("
    "{'results': [{'name': n, 'passed': True, 'message': '', 'timed_out': False} for n in "
    "['test_all_correct', 'test_half_correct', 'test_none_correct']], 'error': None})\n"
)


def test_a_loop_that_never_ends_in_one_test_costs_only_that_test(submit_code, code_question):
    code_question.time_limit_seconds = 1
    code_question.save(update_fields=["time_limit_seconds"])
    looping_on_one_input = """
def accuracy(predictions, labels):
    while predictions == [1, 1]:
        pass
    return sum(p == y for p, y in zip(predictions, labels)) / len(predictions)
"""
    attempt, _ = submit_code(looping_on_one_input)

    answer = grade(attempt)

    assert visible_outcomes(answer) == {
        "test_all_correct": True,
        "test_half_correct": True,
        "test_none_correct": False,
    }
    assert answer.details["visible"][2]["message"].startswith("Your code took longer than")
    assert answer.details["hidden"] == {"passed": 2, "total": 2}
    assert answer.score == Decimal("1.60")


@pytest.mark.parametrize(
    "forgery",
    [
        # a made-up report as the last line of the output, then the end of the program
        FORGED + "import os\nprint(FORGED, flush=True)\nos._exit(0)\n",
        # a made-up report before the tests run: the runner's own report comes after it
        FORGED + "print(FORGED, flush=True)\n",
    ],
    ids=["last-line", "before-the-tests"],
)
def test_a_forged_result_line_earns_nothing(submit_code, forgery):
    code = forgery + "\ndef accuracy(predictions, labels):\n    return -1\n"
    attempt, _ = submit_code(code)

    answer = grade(attempt)

    assert answer.score == Decimal(0) and answer.is_correct is False
    assert not any(visible_outcomes(answer).values())


def test_grading_twice_changes_nothing(submit_code):
    attempt, _ = submit_code(ALL_OR_NOTHING)
    first = grade(attempt)

    second = grade(attempt)
    grade_code_answers_task.apply(args=[attempt.id])  # the task, as a redelivered message runs it
    third = Answer.objects.get(pk=first.pk)

    assert second.updated_at == first.updated_at == third.updated_at
    assert (third.score, third.details) == (first.score, first.details)
    assert Attempt.objects.get(pk=attempt.id).score == Decimal("1.20")


def test_the_task_grades_the_attempt(submit_code):
    attempt, _ = submit_code(CORRECT)

    grade_code_answers_task.apply(args=[attempt.id])

    assert Attempt.objects.get(pk=attempt.id).score == Decimal(2)


def test_an_empty_code_answer_scores_zero_at_once_without_a_job(submit_code):
    attempt, callbacks = submit_code(None)

    answer = Answer.objects.get(attempt=attempt)

    assert (answer.score, answer.is_correct) == (Decimal(0), False)
    assert not answer.is_running and callbacks == []


def test_a_blank_code_answer_scores_zero_at_once_without_a_job(
    cast, client_for, code_question, django_capture_on_commit_callbacks
):
    url = reverse("questionnaire_detail", args=[cast.course.slug, cast.questionnaire.chapter.slug])

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client_for(cast.student).post(url, {f"q_{code_question.id}": "  \r\n\t\r\n", "submit": "1"})

    answer = Answer.objects.get(question=code_question)
    assert (answer.response, answer.score, answer.feedback) == (None, 0, "No answer given.")
    assert callbacks == []


def test_a_saved_draft_shows_the_students_code_instead_of_the_starter(
    cast, client_for, code_question
):
    client = client_for(cast.student)
    url = reverse("questionnaire_detail", args=[cast.course.slug, cast.questionnaire.chapter.slug])
    client.post(
        url, {f"q_{code_question.id}": "def accuracy(p, l):\r\n    return 0.5\r\n", "save": "1"}
    )

    page = client.get(url).content.decode()

    assert "def accuracy(p, l):\n    return 0.5\n</textarea>" in page
    assert "def accuracy(predictions, labels):\n    ...\n</textarea>" not in page


def test_the_attempt_page_says_running_until_the_tests_report(
    cast, client_for, code_question, django_capture_on_commit_callbacks
):
    client = client_for(cast.student)
    url = reverse("questionnaire_detail", args=[cast.course.slug, cast.questionnaire.chapter.slug])
    # The browser posts line breaks as \r\n; they are stored as \n.
    posted = CORRECT.replace("\n", "\r\n")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(url, {f"q_{code_question.id}": posted, "submit": "1"})
    attempt = Attempt.objects.get(user=cast.student)
    assert response.status_code == 302 and len(callbacks) == 1
    assert Answer.objects.get(attempt=attempt).response == CORRECT

    running = client.get(attempt_url(cast, attempt)).content.decode()
    assert "Running your code…" in running
    assert '<meta http-equiv="refresh" content="3">' in running

    services.attempt_code_answers_grade(attempt_id=attempt.id)
    done = client.get(attempt_url(cast, attempt)).content.decode()

    assert "Running your code…" not in done and 'http-equiv="refresh"' not in done
    assert "All 5 tests passed." in done and "Hidden tests: 2 of 2 passed" in done
    assert done.count("✓") >= 3 and "test_half_correct" in done


def test_the_students_code_is_escaped_on_the_attempt_page(cast, client_for, submit_code):
    attempt, _ = submit_code("# <script>alert(1)</script>\ndef accuracy(p, l):\n    return 0\n")

    page = client_for(cast.student).get(attempt_url(cast, attempt)).content.decode()

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_code_longer_than_the_limit_is_refused(cast, client_for, code_question):
    url = reverse("questionnaire_detail", args=[cast.course.slug, cast.questionnaire.chapter.slug])

    response = client_for(cast.student).post(
        url, {f"q_{code_question.id}": "x = 1\n" * 4000, "submit": "1"}
    )

    assert response.status_code == 200 and b"at most 20000 characters" in response.content
    assert not Attempt.objects.exists()


def test_when_the_sandbox_cannot_run_the_answer_waits_then_says_so(
    cast, client_for, submit_code, settings, monkeypatch
):
    settings.GRADER_SANDBOX = "bwrap"
    monkeypatch.setenv("TOPDOWN_BWRAP", "/nonexistent/bwrap")
    attempt, _ = submit_code(CORRECT)

    with pytest.raises(services.CodeRunUnavailable):
        services.attempt_code_answers_grade(attempt_id=attempt.id)
    assert Answer.objects.get(attempt=attempt).is_running  # left for a retry

    services.attempt_code_answers_grade(attempt_id=attempt.id, give_up=True)
    answer = Answer.objects.get(attempt=attempt)
    page = client_for(cast.student).get(attempt_url(cast, attempt)).content.decode()

    assert answer.score is None and not answer.is_running
    assert "problem on our side" in page and 'http-equiv="refresh"' not in page


def test_the_reconciler_finds_only_old_attempts_still_waiting_for_their_tests(submit_code):
    waiting, _ = submit_code(CORRECT)
    Attempt.objects.filter(pk=waiting.pk).update(submitted_at=timezone.now() - timedelta(hours=1))
    later = timezone.now() + timedelta(hours=1)

    assert services.attempts_with_code_pending(older_than=timedelta(minutes=10)) == [waiting.id]
    grade(waiting)
    assert services.attempts_with_code_pending(older_than=timedelta(0), now=later) == []


def test_the_database_refuses_a_code_question_without_tests(cast):
    with pytest.raises(IntegrityError), transaction.atomic():
        QuestionFactory(
            questionnaire=cast.questionnaire, kind=Question.Kind.CODE, accepted_answers=[]
        )


def test_validation_names_what_is_wrong_with_the_tests(cast):
    question = QuestionFactory.build(
        questionnaire=cast.questionnaire,
        kind=Question.Kind.CODE,
        accepted_answers=[],
        visible_tests="def check():\n    assert True\n",
        hidden_tests="def test_x(:\n",
    )

    with pytest.raises(ValidationError) as raised:
        question.full_clean()

    errors = raised.value.message_dict
    assert "defines no test function" in errors["visible_tests"][0]
    assert "not valid Python" in errors["hidden_tests"][0]


COURSE_YAML = "slug: c\ntitle: C\n"
CODE_QUESTION = """questions:
  - id: code
    kind: code
    prompt: Write f.
    starter: |
      def f(x):
          ...
    tests: |
      def test_f():
          assert f(1) == 2
"""


def course_with(tmp_path: Path, questionnaire: str) -> Path:
    (tmp_path / "chapters" / "01-a").mkdir(parents=True)
    (tmp_path / "course.yaml").write_text(COURSE_YAML)
    (tmp_path / "chapters" / "01-a" / "chapter.md").write_text("---\nid: a\ntitle: A\n---\nHi")
    (tmp_path / "chapters" / "01-a" / "questionnaire.yaml").write_text(questionnaire)
    return tmp_path


@pytest.mark.django_db
def test_a_code_question_imports_from_a_course_folder(tmp_path):
    course_folder_import(course_with(tmp_path, CODE_QUESTION + "    time_limit: 3\n"))

    question = Question.objects.get(key="code")
    assert question.kind == Question.Kind.CODE and question.time_limit_seconds == 3
    assert question.starter_code == "def f(x):\n    ...\n"
    assert question.visible_tests == "def test_f():\n    assert f(1) == 2\n"
    assert question.hidden_tests == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("def test_f", "def check_f"), "tests: defines no test function"),
        (lambda t: t.replace("f(1) == 2", "f(1) == "), "tests: is not valid Python"),
        (lambda t: t.replace("def test_f():", "def test_f(tmp_path):"), "takes arguments"),
        (lambda t: t.replace("def f(x):", "def f(x)"), "starter: is not valid Python"),
        (lambda t: t + "    time_limit: 0\n", "time_limit: must be at least 1"),
        (lambda t: t + "    hidden_tests: x = 1\n", "hidden_tests: defines no test function"),
        (lambda t: t.split("    tests:")[0], "needs 'tests' or 'hidden_tests'"),
    ],
)
def test_a_broken_code_question_is_refused_by_the_import(tmp_path, edit, message):
    with pytest.raises(CourseFolderError, match=message):
        course_folder_import(course_with(tmp_path, edit(CODE_QUESTION)))
