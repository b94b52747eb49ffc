from __future__ import annotations

import io
import shutil
import stat
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

from courses import course_zip
from courses.course_folder import course_folder_import
from courses.course_zip import (
    CourseZipError,
    course_zip_build,
    course_zip_extract,
    course_zip_import,
)
from courses.models import Course
from tests.grader.factories import DatasetFactory

DEMO = Path(settings.BASE_DIR) / "demo" / "course"


def make_zip(entries: dict[str, bytes], *, prefix: str = "") -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(prefix + name, data)
    buffer.seek(0)
    return buffer


def demo_entries() -> dict[str, bytes]:
    return {p.relative_to(DEMO).as_posix(): p.read_bytes() for p in DEMO.rglob("*") if p.is_file()}


def with_entry(info: zipfile.ZipInfo, data: bytes = b"x") -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("course.yaml", b"slug: c\ntitle: C\n")
        archive.writestr(info, data)
    buffer.seek(0)
    return buffer


def test_a_plain_zip_unpacks_to_its_folder(tmp_path):
    root = course_zip_extract(make_zip(demo_entries()), tmp_path)

    assert root == tmp_path.resolve()
    assert (root / "chapters/01-first-model/questionnaire.yaml").read_bytes() == (
        DEMO / "chapters/01-first-model/questionnaire.yaml"
    ).read_bytes()


def test_one_top_level_folder_is_unwrapped_and_macos_leftovers_are_skipped(tmp_path):
    entries = {**demo_entries(), ".DS_Store": b"junk"}
    archive = make_zip(entries, prefix="my-course/")
    with zipfile.ZipFile(archive, "a") as extra:
        extra.writestr("__MACOSX/my-course/._course.yaml", b"junk")
    archive.seek(0)

    root = course_zip_extract(archive, tmp_path)

    assert root == tmp_path.resolve() / "my-course"
    assert not (tmp_path / "__MACOSX").exists()
    assert not (root / ".DS_Store").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../evil.txt", "paths with .. are refused"),
        ("chapters/../../evil.txt", "paths with .. are refused"),
        ("/etc/evil", "absolute paths are refused"),
        ("C:/evil", "absolute paths are refused"),
        ("chapters\\..\\evil", "backslashes are refused"),
    ],
)
def test_paths_outside_the_target_are_refused_and_nothing_is_written(tmp_path, name, message):
    target = tmp_path / "target"
    target.mkdir()

    with pytest.raises(CourseZipError, match=message):
        course_zip_extract(make_zip({"course.yaml": b"slug: c\n", name: b"x"}), target)

    assert list(target.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_a_symbolic_link_is_refused(tmp_path):
    info = zipfile.ZipInfo("chapters/link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16

    with pytest.raises(CourseZipError, match="symbolic links are refused"):
        course_zip_extract(with_entry(info, b"/etc/passwd"), tmp_path)

    assert list(tmp_path.iterdir()) == []


def test_a_device_is_refused(tmp_path):
    info = zipfile.ZipInfo("chapters/dev")
    info.external_attr = (stat.S_IFCHR | 0o666) << 16

    with pytest.raises(CourseZipError, match="only plain files and folders"):
        course_zip_extract(with_entry(info), tmp_path)


def test_too_many_files_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(course_zip, "ZIP_MAX_FILES", 5)
    entries = {f"chapters/{n:02d}/x.md": b"x" for n in range(6)}

    with pytest.raises(CourseZipError, match="more than 5 entries"):
        course_zip_extract(make_zip(entries), tmp_path)


def test_too_many_declared_bytes_are_refused_before_unpacking(tmp_path, monkeypatch):
    monkeypatch.setattr(course_zip, "ZIP_MAX_TOTAL_BYTES", 1000)
    entries = {"course.yaml": b"slug: c\n", "a.md": bytes(range(256)) * 2, "b.md": b"y" * 600}

    with pytest.raises(CourseZipError, match="once unpacked"):
        course_zip_extract(make_zip(entries), tmp_path)

    assert list(tmp_path.iterdir()) == []


def test_a_zip_bomb_is_refused_by_its_compression_ratio(tmp_path):
    bomb = make_zip({"course.yaml": b"slug: c\n", "chapters/bomb.md": b"\0" * (10 * 1024 * 1024)})
    assert len(bomb.getvalue()) < 100 * 1024

    with pytest.raises(CourseZipError, match="possible zip bomb"):
        course_zip_extract(bomb, tmp_path)

    assert list(tmp_path.iterdir()) == []


def test_a_header_that_understates_a_size_is_caught_while_unpacking(tmp_path):
    archive = make_zip({"course.yaml": b"slug: c\n", "big.md": b"0123456789" * 1000})
    data = bytearray(archive.getvalue())
    # Rewrite the central directory's uncompressed size of big.md to 10 bytes.
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as original:
        info = original.getinfo("big.md")
    offset = data.rfind(b"big.md") - 46  # the central directory entry's fixed header
    assert data[offset : offset + 4] == b"PK\x01\x02"
    data[offset + 24 : offset + 28] = (10).to_bytes(4, "little")
    assert info.file_size == 10_000

    with pytest.raises(CourseZipError, match=r"big\.md"):
        course_zip_extract(io.BytesIO(bytes(data)), tmp_path)


def test_a_nested_zip_is_just_a_file(tmp_path):
    inner = make_zip({"../evil": b"x"}).getvalue()

    root = course_zip_extract(make_zip({"course.yaml": b"x", "data/inner.zip": inner}), tmp_path)

    assert (root / "data/inner.zip").read_bytes() == inner
    assert not (tmp_path.parent / "evil").exists()


def test_not_a_zip_and_a_zip_without_a_course_are_refused(tmp_path):
    with pytest.raises(CourseZipError, match="not a zip file"):
        course_zip_extract(io.BytesIO(b"plain text"), tmp_path / "a")
    (tmp_path / "b").mkdir()
    with pytest.raises(CourseZipError, match=r"no course\.yaml"):
        course_zip_extract(make_zip({"x/y/course.yaml": b"x"}), tmp_path / "b")


@pytest.mark.django_db
def test_a_course_downloaded_as_zip_imports_back_unchanged(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    DatasetFactory(slug="mnist10k", n_classes=10)
    folder = tmp_path / "course"
    shutil.copytree(DEMO, folder)
    course, _ = course_folder_import(folder)

    data = course_zip_build(course)
    again = course_zip_build(course)
    _, report = course_zip_import(upload=io.BytesIO(data), course=course)

    assert data == again
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "practical-deep-learning/course.yaml" in names and names == sorted(names)
    assert not report.changed and Course.objects.count() == 1
