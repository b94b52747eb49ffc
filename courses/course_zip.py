"""Course folders as zip files: safe unpacking of an upload, and a download built by export.

An uploaded zip is untrusted. ``course_zip_extract`` writes only plain files and folders, only
under the target, and refuses the archive as a whole (before writing anything) when an entry is
an absolute path, climbs with ``..``, is a link or a device, is encrypted, or when the archive has
too many entries, declares too many bytes, or compresses a file suspiciously well (a zip bomb).
While writing it counts the bytes really produced, so a header that lies about a size changes
nothing either.
"""

from __future__ import annotations

import io
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from accounts.models import User
from courses.course_folder import (
    CourseFolderError,
    ImportReport,
    course_folder_export,
    course_folder_import,
)
from courses.course_format import COURSE_FILE
from courses.models import Course

ZIP_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
ZIP_MAX_FILES = 2_000
ZIP_MAX_TOTAL_BYTES = 50 * 1024 * 1024
# Markdown and Python compress 3 to 10 times; far more means a file made to expand.
ZIP_MAX_RATIO = 100
ZIP_RATIO_FROM_BYTES = 64 * 1024  # tiny files may compress any amount without harm
CHUNK_BYTES = 64 * 1024
# Left behind by macOS's archiver; never part of a course.
IGNORED_PARTS = {"__MACOSX", ".DS_Store"}


class CourseZipError(CourseFolderError):
    """The upload is not a zip we unpack; nothing was written."""

    def __init__(self, message: str) -> None:
        super().__init__([message])


def _entry_path(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The entry's relative path, or None for an entry to skip; raises for unsafe names."""
    name = info.filename
    if "\\" in name or "\x00" in name:
        raise CourseZipError(f"{name!r}: names with backslashes are refused")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise CourseZipError(f"{name}: absolute paths are refused")
    path = PurePosixPath(name)
    if ".." in path.parts:
        raise CourseZipError(f"{name}: paths with .. are refused")
    if not path.parts or any(part in IGNORED_PARTS for part in path.parts):
        return None
    return path


def _check_entry(info: zipfile.ZipInfo) -> None:
    name = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise CourseZipError(f"{name}: symbolic links are refused")
    file_type = stat.S_IFMT(mode)
    if file_type and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise CourseZipError(f"{name}: only plain files and folders are allowed")
    if info.flag_bits & 0x1:
        raise CourseZipError(f"{name}: encrypted entries are refused")
    if info.file_size > ZIP_RATIO_FROM_BYTES and info.file_size > ZIP_MAX_RATIO * max(
        info.compress_size, 1
    ):
        raise CourseZipError(
            f"{name}: compressed more than {ZIP_MAX_RATIO} times; refused as a possible zip bomb"
        )


def course_zip_extract(upload: IO[bytes], target: Path) -> Path:
    """Unpack ``upload`` into the empty folder ``target``; return the course folder in it.

    That is ``target`` itself, or its one top-level folder when the zip wraps the course in
    one. Raises ``CourseZipError`` naming the first problem; nothing is written then except
    what was unpacked before a lying size was caught (``target`` is the caller's to delete).
    """
    try:
        archive = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise CourseZipError("not a zip file") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > ZIP_MAX_FILES:
            raise CourseZipError(f"more than {ZIP_MAX_FILES:,} entries")
        if sum(info.file_size for info in infos) > ZIP_MAX_TOTAL_BYTES:
            raise CourseZipError(
                f"more than {ZIP_MAX_TOTAL_BYTES // (1024 * 1024)} MB once unpacked"
            )
        entries: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        seen: set[PurePosixPath] = set()
        for info in infos:
            path = _entry_path(info)
            if path is None:
                continue
            _check_entry(info)
            if path in seen:
                raise CourseZipError(f"{info.filename}: appears twice")
            seen.add(path)
            entries.append((info, path))
        root = target.resolve()
        written = 0
        for info, path in entries:
            destination = (root / path).resolve()
            if not destination.is_relative_to(root):
                raise CourseZipError(f"{info.filename}: outside the folder")
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            written += _copy(archive, info, destination, budget=ZIP_MAX_TOTAL_BYTES - written)
    return _course_root(root)


def _copy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, destination: Path, budget: int) -> int:
    count = 0
    try:
        with archive.open(info) as source, destination.open("xb") as out:
            while chunk := source.read(CHUNK_BYTES):
                count += len(chunk)
                if count > info.file_size or count > budget:
                    raise CourseZipError(f"{info.filename}: larger than its header says")
                out.write(chunk)
    except FileExistsError:
        raise CourseZipError(f"{info.filename}: appears twice") from None
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as error:
        raise CourseZipError(f"{info.filename}: cannot be unpacked ({error})") from None
    return count


def _course_root(root: Path) -> Path:
    if (root / COURSE_FILE).exists():
        return root
    children = [p for p in root.iterdir() if not p.name.startswith(".")]
    if len(children) == 1 and children[0].is_dir() and (children[0] / COURSE_FILE).is_file():
        return children[0]
    raise CourseZipError(
        f"no {COURSE_FILE} at the top of the zip (or inside its one top-level folder)"
    )


def course_zip_import(
    *,
    upload: IO[bytes],
    course: Course | None = None,
    new: bool = False,
    instructor: User | None = None,
    dry_run: bool = False,
) -> tuple[Course, ImportReport]:
    """Unpack a zipped course folder and import it (see ``course_folder_import``)."""
    with tempfile.TemporaryDirectory(prefix="topdown-course-") as folder:
        root = course_zip_extract(upload, Path(folder))
        return course_folder_import(
            root, course=course, new=new, instructor=instructor, dry_run=dry_run
        )


def course_zip_build(course: Course) -> bytes:
    """The course's folder as a zip, inside one folder named after the course.

    Entries are sorted and dated 1980-01-01, so the same course gives the same bytes.
    """
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="topdown-export-") as folder:
        names = course_folder_export(course=course, target=Path(folder))
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in names:
                info = zipfile.ZipInfo(f"{course.slug}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, (Path(folder) / name).read_bytes())
    return buffer.getvalue()
