"""The course staff's gradebook, its CSV export and a questionnaire's per-question statistics."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import User
from courses import access
from courses.gradebook import (
    GradeCell,
    grade_weights_set,
    gradebook_for_course,
    questionnaire_statistics,
)
from courses.gradebook_forms import GradeWeightsForm
from grader.staff_views import csv_safe


class AuthenticatedRequest(HttpRequest):
    """What a view behind ``login_required`` gets."""

    user: User


@login_required
@require_http_methods(["GET", "POST"])
def gradebook(request: AuthenticatedRequest, course_slug: str) -> HttpResponse:
    if request.method == "POST":
        course_access = access.course_get_for_instructor(user=request.user, course_slug=course_slug)
    else:
        course_access = access.course_get_for_member(
            user=request.user, course_slug=course_slug, staff=True
        )
    course = course_access.course
    book = gradebook_for_course(course=course)
    form = None
    if course_access.is_instructor:
        form = GradeWeightsForm(
            request.POST if request.method == "POST" else None, columns=book.columns
        )
        if request.method == "POST" and form.is_valid():
            try:
                grade_weights_set(course=course, weights=form.weights())
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, "Weights saved.")
                return redirect("gradebook", course_slug=course.slug)
    context = {
        "access": course_access,
        "course": course,
        "columns": book.columns,
        "page_obj": Paginator(book.students, 50).get_page(request.GET.get("page")),
        "student_count": len(book.students),
        "form": form,
    }
    return render(request, "courses/gradebook.html", context)


def _cell_value(cell: GradeCell) -> object:
    return "" if cell.fraction is None else round(cell.fraction, 4)


@login_required
@require_GET
def gradebook_csv(request: AuthenticatedRequest, course_slug: str) -> HttpResponse:
    """One line per student: each item's 0-1 grade (raw best score for assignments too), total."""
    course_access = access.course_get_for_member(
        user=request.user, course_slug=course_slug, staff=True
    )
    course = course_access.course
    book = gradebook_for_course(course=course)
    response = HttpResponse(
        content_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{course.slug}-gradebook.csv"',
            "Cache-Control": "private, no-store",
        },
    )
    writer = csv.writer(response)
    header: list[object] = ["username", "name"]
    weights: list[object] = ["", "weight"]
    for column in book.columns:
        header.append(f"{column.chapter.title}: {column.title}")
        weights.append(float(column.weight) if column.counts else "")
        if column.kind == "assignment":
            header.append(f"{column.chapter.title}: {column.title} (best score)")
            weights.append("")
    header.append("total")
    weights.append("")
    writer.writerow([csv_safe(cell) for cell in header])
    writer.writerow([csv_safe(cell) for cell in weights])
    for student in book.students:
        row: list[object] = [student.username, student.name]
        for column, cell in zip(book.columns, student.cells, strict=True):
            row.append(_cell_value(cell))
            if column.kind == "assignment":
                row.append("" if cell.raw is None else cell.raw)
        row.append("" if student.total is None else round(student.total, 4))
        writer.writerow([csv_safe(cell) for cell in row])
    return response


@login_required
@require_GET
def questionnaire_stats(
    request: AuthenticatedRequest, course_slug: str, chapter_slug: str
) -> HttpResponse:
    course_access, questionnaire = access.questionnaire_get_for_staff(
        user=request.user, course_slug=course_slug, chapter_slug=chapter_slug
    )
    context = {
        "access": course_access,
        "course": course_access.course,
        "chapter": questionnaire.chapter,
        "questionnaire": questionnaire,
        "stats": questionnaire_statistics(questionnaire=questionnaire),
    }
    return render(request, "courses/questionnaire_stats.html", context)
