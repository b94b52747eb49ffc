from __future__ import annotations

import io
import zipfile

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from courses.course_format import yaml_dump
from courses.course_zip import course_zip_build
from courses.models import Chapter, Course, Enrolment
from tests.factories import ChapterFactory, UserFactory

pytestmark = pytest.mark.django_db


def zipped(files: dict[str, str], name: str = "course.zip") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def course_files(slug: str, chapter_title: str = "Intro") -> dict[str, str]:
    return {
        "course.yaml": yaml_dump({"slug": slug, "title": "Deep Learning"}),
        "chapters/01-intro/chapter.md": f"---\nid: intro\ntitle: {chapter_title}\n---\nHello\n",
    }


@pytest.mark.parametrize("who", ["ta", "student", "outsider"])
def test_only_instructors_may_see_download_or_upload_the_folder(client_for, cast, who):
    client = client_for(getattr(cast, who))
    slug = cast.course.slug

    assert client.get(reverse("course_folder", args=[slug])).status_code == 403
    assert client.get(reverse("course_folder_zip", args=[slug])).status_code == 403
    upload = zipped(course_files(slug, "Hacked"))
    response = client.post(reverse("course_folder", args=[slug]), {"archive": upload})
    assert response.status_code == 403
    assert not Chapter.objects.filter(title="Hacked").exists()


def test_an_anonymous_visitor_is_sent_to_log_in(client, cast):
    response = client.get(reverse("course_folder_zip", args=[cast.course.slug]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_instructor_downloads_the_course_as_a_zip(client_for, cast):
    response = client_for(cast.instructor).get(
        reverse("course_folder_zip", args=[cast.course.slug])
    )

    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert 'filename="deep-learning.zip"' in response["Content-Disposition"]
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert "deep-learning/course.yaml" in names
    assert "deep-learning/chapters/01-first-model/chapter.md" in names


def test_uploading_the_downloaded_zip_with_an_edit_updates_the_course(client_for, cast):
    client = client_for(cast.instructor)
    data = course_zip_build(cast.course)
    archive = zipfile.ZipFile(io.BytesIO(data))
    files = {n: archive.read(n).decode() for n in archive.namelist()}
    chapter = "deep-learning/chapters/01-first-model/chapter.md"
    files[chapter] = files[chapter].replace("title: ", "title: Renamed ", 1)

    preview = client.post(
        reverse("course_folder", args=[cast.course.slug]),
        {"archive": zipped(files), "preview": "1"},
    )
    assert "Preview: what an import would change" in preview.content.decode()
    assert not Chapter.objects.filter(title__startswith="Renamed").exists()

    response = client.post(
        reverse("course_folder", args=[cast.course.slug]), {"archive": zipped(files)}
    )

    page = response.content.decode()
    assert response.status_code == 200 and "Imported" in page
    assert "updated chapter first-model" in page
    assert Chapter.objects.get(course=cast.course, uid="first-model").title.startswith("Renamed")


def test_an_invalid_folder_lists_its_problems_and_changes_nothing(client_for, cast):
    files = course_files(cast.course.slug)
    files["chapters/01-intro/questionnaire.yaml"] = "questions:\n  - id: q\n    kind: single\n"
    before = list(Chapter.objects.values_list("pk", "title"))

    response = client_for(cast.instructor).post(
        reverse("course_folder", args=[cast.course.slug]), {"archive": zipped(files)}
    )

    page = response.content.decode()
    assert "Not imported" in page
    assert "chapters/01-intro/questionnaire.yaml: questions[0].prompt: required" in page
    assert "chapters/01-intro/questionnaire.yaml: questions[0].choices: required" in page
    assert list(Chapter.objects.values_list("pk", "title")) == before


def test_an_unsafe_zip_is_refused_on_the_page(client_for, cast):
    files = {**course_files(cast.course.slug), "../../evil.md": "x"}

    response = client_for(cast.instructor).post(
        reverse("course_folder", args=[cast.course.slug]), {"archive": zipped(files)}
    )

    assert "paths with .. are refused" in response.content.decode()


def test_a_file_that_is_not_a_zip_is_refused_by_the_form(client_for, cast):
    upload = SimpleUploadedFile("course.tar", b"x")

    response = client_for(cast.instructor).post(
        reverse("course_folder", args=[cast.course.slug]), {"archive": upload}
    )

    assert "Upload a .zip file." in response.content.decode()


def test_the_folder_of_another_course_is_refused(client_for, cast):
    response = client_for(cast.instructor).post(
        reverse("course_folder", args=[cast.course.slug]),
        {"archive": zipped(course_files("another-course"))},
    )

    assert "not &#x27;deep-learning&#x27;" in response.content.decode()
    assert not Course.objects.filter(slug="another-course").exists()


def test_a_user_without_permission_may_not_create_a_course(client_for, cast):
    client = client_for(cast.instructor)

    assert client.get(reverse("course_folder_new")).status_code == 403
    response = client.post(
        reverse("course_folder_new"), {"archive": zipped(course_files("new-course"))}
    )
    assert response.status_code == 403
    assert not Course.objects.filter(slug="new-course").exists()


def test_a_user_with_permission_creates_a_course_and_becomes_its_instructor(client_for, db):
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="add_course"))
    client = client_for(user)
    assert client.get(reverse("course_folder_new")).status_code == 200

    response = client.post(
        reverse("course_folder_new"), {"archive": zipped(course_files("new-course"))}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("course_detail", args=["new-course"])
    course = Course.objects.get(slug="new-course")
    assert Enrolment.objects.get(user=user, course=course).role == "instructor"


def test_creating_a_course_that_exists_is_refused(client_for, cast):
    ChapterFactory(course=cast.course, slug="intro")
    client = client_for(UserFactory(is_superuser=True))

    response = client.post(
        reverse("course_folder_new"), {"archive": zipped(course_files(cast.course.slug))}
    )

    assert response.status_code == 200
    assert "exists already" in response.content.decode()
