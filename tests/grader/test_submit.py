"""Submitting from the assignment page: upload a file or post the editor's text.

Every refusal is shown next to the field it concerns, keeps what the student wrote, and
creates no submission.
"""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from grader.models import CodeKind, RunStatus, Submission
from grader.pipeline import MAX_CODE_BYTES
from tests.factories import ChapterFactory, EnrolmentFactory, UserFactory
from tests.grader.factories import AssignmentFactory, SubmissionFactory

pytestmark = pytest.mark.django_db

CODE = "import numpy as np, topdown_task as tt\ntt.save_predictions(np.zeros(12, int))\n"


def notebook(*sources: str, kind: str = "code") -> bytes:
    cells = [{"cell_type": kind, "metadata": {}, "source": source} for source in sources]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}).encode()


@pytest.fixture
def assignment(cast):
    return AssignmentFactory(
        chapter=ChapterFactory(course=cast.course),
        starter_code="import topdown_task as tt\n# your model here\n",
        submissions_per_day=2,
    )


@pytest.fixture
def student_client(client, cast):
    client.force_login(cast.student)
    return client


def url(assignment) -> str:
    return reverse("assignment_detail", args=[assignment.slug])


def upload(client, assignment, name: str, content: bytes):
    return client.post(
        url(assignment), {"via": "upload", "code_file": SimpleUploadedFile(name, content)}
    )


def write(client, assignment, code: str):
    return client.post(url(assignment), {"via": "editor", "code": code})


def errors_next_to(response, field_id: str) -> list[str]:
    """The error messages shown inside the form that holds ``field_id``, after the field."""
    text = response.content.decode()
    start = text.index(f'id="{field_id}"')
    end = text.index("</form>", start)
    lists = re.findall(r'<ul class="errorlist"[^>]*>(.*?)</ul>', text[start:end], re.S)
    return [html.unescape(item) for block in lists for item in re.findall(r"<li>(.*?)</li>", block)]


def textarea_value(response) -> str:
    text = response.content.decode()
    match = re.search(r'<textarea name="code"[^>]*>\n?(.*?)</textarea>', text, re.S)
    assert match, "the editor's textarea is missing"
    return html.unescape(match.group(1))


# --- Uploads ----------------------------------------------------------------------------------


def test_uploading_a_python_file_queues_it_and_shows_the_submission(
    student_client, cast, assignment
):
    response = upload(student_client, assignment, "model.py", CODE.encode())

    submission = Submission.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("submission_detail", args=[submission.pk])
    assert submission.user == cast.student and submission.status == RunStatus.QUEUED
    assert submission.filename == "model.py" and submission.code == CODE


@pytest.mark.parametrize("via", ["upload", "editor"])
def test_sending_the_same_form_twice_makes_one_submission(student_client, assignment, via):
    # Given the token the page put in the form
    page = student_client.get(url(assignment)).content.decode()
    tokens = re.findall(r'name="token" value="([0-9a-f-]{36})"', page)
    assert len(tokens) == 2 and tokens[0] != tokens[1]  # one per form, fresh per page
    token = tokens[0] if via == "upload" else tokens[1]

    # When it is sent twice (a double click, or a retry after an error page)
    def send():
        if via == "upload":
            return student_client.post(
                url(assignment),
                {"via": "upload", "token": token, "code_file": SimpleUploadedFile("m.py", b"x=1")},
            )
        return student_client.post(url(assignment), {"via": "editor", "code": CODE, "token": token})

    first, second = send(), send()

    # Then both land on the one submission, which used one of the day's two slots
    submission = Submission.objects.get()
    assert first["Location"] == second["Location"]
    assert first["Location"] == reverse("submission_detail", args=[submission.pk])
    assert str(submission.client_token) == token
    assert send()["Location"] == first["Location"]  # a third time: still the same one
    assert student_client.post(url(assignment), {"via": "editor", "code": CODE}).status_code == 302
    assert Submission.objects.count() == 2  # a new form (no token) is a new submission


def test_a_token_sent_by_another_student_is_not_theirs(client, cast, assignment):
    client.force_login(cast.student)
    token = "6b1f2a8e-0c4e-4f6e-9d3e-2f1a0b9c8d7e"
    client.post(url(assignment), {"via": "editor", "code": CODE, "token": token})
    client.force_login(cast.other_student)

    client.post(url(assignment), {"via": "editor", "code": CODE, "token": token})

    assert Submission.objects.filter(client_token=token).count() == 2
    assert {s.user for s in Submission.objects.all()} == {cast.student, cast.other_student}


def test_uploading_a_notebook_queues_it(student_client, assignment):
    content = notebook("import numpy as np", "print(np.zeros(3))")

    response = upload(student_client, assignment, "work.ipynb", content)

    assert response.status_code == 302
    submission = Submission.objects.get()
    assert submission.code_kind == CodeKind.IPYNB and submission.code == content.decode()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", b"print(1)\n", "Upload a Python file (.py) or a Jupyter notebook (.ipynb)."),
        ("model.pth", b"\x80\x02}q\x00.", "Upload a Python file (.py) or a Jupyter notebook"),
        ("big.py", b"#" * (MAX_CODE_BYTES + 1), "The file is larger than 1024 KB"),
        ("latin1.py", "print('café')\n".encode("latin-1"), "The file is not UTF-8 text"),
        ("nul.py", b"print(1)\x00\n", "NUL bytes"),
        ("empty.py", b"", "The file is empty: there is no code to run."),
        ("blank.py", b"\n   \n\t\n", "The file is empty: there is no code to run."),
        ("broken.ipynb", b'{"cells": [', "This is not a Jupyter notebook (invalid JSON"),
        ("list.ipynb", b"[1, 2, 3]", "This is not a Jupyter notebook (no list of cells)"),
        (
            "prose.ipynb",
            notebook("# Only words", kind="markdown"),
            "The notebook has no code cells.",
        ),
        ("blank.ipynb", notebook("", "  \n"), "The notebook's code cells are empty"),
    ],
)
def test_a_bad_upload_is_explained_next_to_the_field_and_nothing_is_queued(
    student_client, assignment, name, content, message
):
    response = upload(student_client, assignment, name, content)

    assert response.status_code == 200
    assert any(message in error for error in errors_next_to(response, "id_code_file"))
    assert not Submission.objects.exists()


def test_posting_the_upload_form_without_a_file_asks_for_one(student_client, assignment):
    response = student_client.post(url(assignment), {"via": "upload"})

    assert errors_next_to(response, "id_code_file") == ["Choose a .py or .ipynb file to upload."]
    assert not Submission.objects.exists()


def test_a_refused_upload_keeps_the_editors_draft_as_the_starter(student_client, assignment):
    response = upload(student_client, assignment, "notes.txt", b"x")

    assert textarea_value(response) == assignment.starter_code
    assert "data-posted" not in response.content.decode()


# --- The editor -------------------------------------------------------------------------------


def test_the_editor_starts_with_the_starter_code(student_client, assignment):
    response = student_client.get(url(assignment))

    assert textarea_value(response) == assignment.starter_code
    assert 'data-draft-key="topdown:draft:' in response.content.decode()


def test_code_from_the_editor_is_submitted_as_editor_py(student_client, cast, assignment):
    response = write(student_client, assignment, CODE.replace("\n", "\r\n"))

    submission = Submission.objects.get()
    assert response.status_code == 302
    assert submission.user == cast.student
    assert submission.filename == "editor.py" and submission.code_kind == CodeKind.PY
    assert submission.code == CODE  # the browser's CRLF line breaks become plain newlines


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("", "The editor is empty: write some code before submitting."),
        ("  \r\n\t\r\n", "The editor is empty: write some code before submitting."),
        ("print(1)\x00", "Null characters are not allowed."),
        ("#" * (MAX_CODE_BYTES + 1), "The file is larger than 1024 KB"),
    ],
)
def test_bad_editor_text_is_explained_and_kept(student_client, assignment, code, message):
    response = write(student_client, assignment, code)

    assert response.status_code == 200
    assert any(message in error for error in errors_next_to(response, "id_code"))
    assert not Submission.objects.exists()
    assert "data-posted" in response.content.decode()  # the page's script keeps this text
    if code.strip() and "\x00" not in code:
        assert textarea_value(response) == code.replace("\r\n", "\n")


# --- Rules that depend on the assignment and the day --------------------------------------------


@pytest.mark.parametrize("via", ["upload", "editor"])
def test_the_daily_limit_is_explained_next_to_the_field(student_client, cast, assignment, via):
    SubmissionFactory.create_batch(2, user=cast.student, assignment=assignment)
    code = "print('third try')\n"

    if via == "upload":
        response = upload(student_client, assignment, "third.py", code.encode())
        field = "id_code_file"
    else:
        response = write(student_client, assignment, code)
        field = "id_code"
        assert textarea_value(response) == code

    assert response.status_code == 200
    assert any("used your 2 submissions" in error for error in errors_next_to(response, field))
    assert Submission.objects.count() == 2


@pytest.mark.parametrize("via", ["upload", "editor"])
def test_a_closed_assignment_refuses_submissions(student_client, assignment, via):
    assignment.due_at = timezone.now() - timedelta(minutes=1)
    assignment.save()
    code = "print('late')\n"

    if via == "upload":
        response = upload(student_client, assignment, "late.py", code.encode())
        field = "id_code_file"
    else:
        response = write(student_client, assignment, code)
        field = "id_code"
        assert textarea_value(response) == code

    assert any("due date has passed" in error for error in errors_next_to(response, field))
    assert not Submission.objects.exists()


# --- Who may submit ---------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["outsider", "member_of_another_course"])
@pytest.mark.parametrize("via", ["upload", "editor"])
def test_non_members_cannot_submit(client, cast, assignment, who, via):
    user = cast.outsider
    if who == "member_of_another_course":
        user = UserFactory()
        EnrolmentFactory(user=user)
    client.force_login(user)

    if via == "upload":
        response = upload(client, assignment, "model.py", CODE.encode())
    else:
        response = write(client, assignment, CODE)

    assert response.status_code == 403
    assert not Submission.objects.exists()


def test_anonymous_visitors_cannot_submit(client, assignment):
    response = write(client, assignment, CODE)

    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not Submission.objects.exists()
