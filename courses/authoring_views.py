"""The course editor: courses, chapters, questionnaires and questions, for instructors only.

Every view starts with an access check from ``courses.access`` (TAs get 403: they review and
grade but do not change content), then its form, then one service from ``courses.authoring``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.forms import BaseForm, BaseFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from courses import access, authoring, preview
from courses.authoring_forms import (
    KIND_HELP,
    ChapterForm,
    ChoiceFormSet,
    CourseForm,
    QuestionForm,
    QuestionKindForm,
    QuestionnaireSettingsForm,
    RubricFormSet,
    choice_formset_initial,
    choice_rows,
    rubric_formset_initial,
    rubric_rows,
)
from courses.models import Chapter, Question, Questionnaire


class AuthenticatedRequest(HttpRequest):
    """What a view behind ``login_required`` gets."""

    user: User


def _errors_to_form(form: BaseForm, error: ValidationError) -> dict[str, list[str]]:
    """Put a service's field errors beside the form's fields; return those the form lacks."""
    others: dict[str, list[str]] = {}
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return others
    for name, messages_ in error.message_dict.items():
        if name in form.fields:
            form.add_error(name, messages_)
        elif name in ("choices", "rubric"):
            others[name] = messages_
        else:
            form.add_error(None, messages_)
    return others


def _direction(request: HttpRequest) -> int:
    return -1 if request.POST.get("direction") == "up" else 1


# --- Courses -----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def course_create(request: AuthenticatedRequest) -> HttpResponse:
    access.course_check_can_create(user=request.user)
    data = request.POST if request.method == "POST" else None
    form = CourseForm(data, initial={"enrolment": "open"})
    if request.method == "POST" and form.is_valid():
        try:
            course = authoring.course_create(user=request.user, **form.cleaned_data)
        except ValidationError as error:
            _errors_to_form(form, error)
        else:
            messages.success(request, f"Course “{course.title}” created. Add its first chapter.")
            return redirect("course_authoring", course_slug=course.slug)
    return render(request, "courses/authoring/course_form.html", {"form": form, "course": None})


@login_required
@require_http_methods(["GET", "POST"])
def course_settings(request: AuthenticatedRequest, course_slug: str) -> HttpResponse:
    course = access.course_get_for_instructor(user=request.user, course_slug=course_slug).course
    form = CourseForm.for_course(course, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            authoring.course_update(course=course, **form.cleaned_data)
        except ValidationError as error:
            _errors_to_form(form, error)
        else:
            messages.success(request, "Course settings saved.")
            return redirect("course_authoring", course_slug=course.slug)
    return render(request, "courses/authoring/course_form.html", {"form": form, "course": course})


@login_required
@require_GET
def course_authoring(request: AuthenticatedRequest, course_slug: str) -> HttpResponse:
    course_access = access.course_get_for_instructor(user=request.user, course_slug=course_slug)
    course = course_access.course
    chapters = list(
        Chapter.objects.filter(course=course)
        .select_related("questionnaire")
        .defer("body")
        .annotate(
            question_count=Count(
                "questionnaire__questions", filter=Q(questionnaire__questions__archived=False)
            )
        )
    )
    context = {
        "course": course,
        "chapters": chapters,
        "previewing": preview.preview_enabled(request, course),
    }
    return render(request, "courses/authoring/course_authoring.html", context)


@login_required
@require_POST
def course_preview(request: AuthenticatedRequest, course_slug: str) -> HttpResponse:
    """Turn "preview as a student" on (course staff) or off (anyone who has it on)."""
    enable = request.POST.get("preview") == "on"
    if enable:
        course = access.course_get_for_member(
            user=request.user, course_slug=course_slug, staff=True
        ).course
    else:
        course = access.course_access_for_user(user=request.user, course_slug=course_slug).course
    preview.preview_set(request, course=course, enabled=enable)
    if enable:
        messages.info(request, "You now see this course as a student would.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("course_detail", kwargs={"course_slug": course.slug})
    return HttpResponseRedirect(target)


# --- Chapters ----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def chapter_create(request: AuthenticatedRequest, course_slug: str) -> HttpResponse:
    course = access.course_get_for_instructor(user=request.user, course_slug=course_slug).course
    form = ChapterForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            chapter = authoring.chapter_create(course=course, **form.cleaned_data)
        except ValidationError as error:
            _errors_to_form(form, error)
        else:
            messages.success(request, "Chapter created as a draft: students see it once published.")
            return redirect("chapter_edit", course_slug=course.slug, chapter_slug=chapter.slug)
    context = {"course": course, "chapter": None, "form": form}
    return render(request, "courses/authoring/chapter_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def chapter_edit(
    request: AuthenticatedRequest, course_slug: str, chapter_slug: str
) -> HttpResponse:
    course_access, chapter = access.chapter_get_for_instructor(
        user=request.user, course_slug=course_slug, chapter_slug=chapter_slug
    )
    initial = {"title": chapter.title, "slug": chapter.slug, "body": chapter.body}
    form = ChapterForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            authoring.chapter_update(chapter=chapter, **form.cleaned_data)
        except ValidationError as error:
            _errors_to_form(form, error)
        else:
            messages.success(request, "Chapter saved.")
            return redirect("chapter_edit", course_slug=course_slug, chapter_slug=chapter.slug)
        chapter.slug = chapter_slug  # the links on the page still need the saved slug
    context = {"course": course_access.course, "chapter": chapter, "form": form}
    return render(request, "courses/authoring/chapter_form.html", context)


@login_required
@require_POST
def chapter_move(
    request: AuthenticatedRequest, course_slug: str, chapter_slug: str
) -> HttpResponse:
    _, chapter = access.chapter_get_for_instructor(
        user=request.user, course_slug=course_slug, chapter_slug=chapter_slug
    )
    authoring.chapter_move(chapter=chapter, offset=_direction(request))
    url = reverse("course_authoring", kwargs={"course_slug": course_slug})
    return redirect(f"{url}#chapter-{chapter.pk}")


@login_required
@require_POST
def chapter_publish(
    request: AuthenticatedRequest, course_slug: str, chapter_slug: str
) -> HttpResponse:
    _, chapter = access.chapter_get_for_instructor(
        user=request.user, course_slug=course_slug, chapter_slug=chapter_slug
    )
    published = request.POST.get("published") == "1"
    authoring.chapter_publish(chapter=chapter, published=published)
    if published:
        messages.success(request, f"“{chapter.title}” is published: students can read it.")
    else:
        messages.success(request, f"“{chapter.title}” is a draft again: students no longer see it.")
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return HttpResponseRedirect(target)
    url = reverse("course_authoring", kwargs={"course_slug": course_slug})
    return redirect(f"{url}#chapter-{chapter.pk}")


@login_required
@require_http_methods(["GET", "POST"])
def chapter_delete(
    request: AuthenticatedRequest, course_slug: str, chapter_slug: str
) -> HttpResponse:
    course_access, chapter = access.chapter_get_for_instructor(
        user=request.user, course_slug=course_slug, chapter_slug=chapter_slug
    )
    if request.method == "POST":
        try:
            authoring.chapter_delete(chapter=chapter)
        except authoring.AuthoringError as error:
            messages.error(request, str(error))
            return redirect("chapter_edit", course_slug=course_slug, chapter_slug=chapter_slug)
        messages.success(request, f"Chapter “{chapter.title}” deleted.")
        return redirect("course_authoring", course_slug=course_slug)
    context = {"course": course_access.course, "chapter": chapter}
    return render(request, "courses/authoring/chapter_delete.html", context)


# --- Questionnaires ----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def questionnaire_delete(
    request: AuthenticatedRequest, course_slug: str, chapter_slug: str
) -> HttpResponse:
    course_access, chapter = access.chapter_get_for_instructor(
        user=request.user, course_slug=course_slug, chapter_slug=chapter_slug
    )
    questionnaire = get_object_or_404(Questionnaire, chapter=chapter)
    if request.method == "POST":
        try:
            authoring.questionnaire_delete(questionnaire=questionnaire)
        except authoring.AuthoringError as error:
            messages.error(request, str(error))
            return redirect(
                "questionnaire_edit", course_slug=course_slug, chapter_slug=chapter_slug
            )
        messages.success(request, f"Questionnaire “{questionnaire.title}” deleted.")
        return redirect("chapter_edit", course_slug=course_slug, chapter_slug=chapter_slug)
    context = {
        "course": course_access.course,
        "chapter": chapter,
        "questionnaire": questionnaire,
        "question_count": questionnaire.questions.filter(archived=False).count(),
    }
    return render(request, "courses/authoring/questionnaire_delete.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def questionnaire_edit(
    request: AuthenticatedRequest, course_slug: str, chapter_slug: str
) -> HttpResponse:
    course_access, chapter = access.chapter_get_for_instructor(
        user=request.user, course_slug=course_slug, chapter_slug=chapter_slug
    )
    questionnaire = Questionnaire.objects.filter(chapter=chapter).first()
    form = QuestionnaireSettingsForm(
        request.POST if request.method == "POST" else None, instance=questionnaire
    )
    if request.method == "POST" and form.is_valid():
        try:
            created = questionnaire is None
            questionnaire = authoring.questionnaire_save(chapter=chapter, **form.cleaned_data)
        except ValidationError as error:
            _errors_to_form(form, error)
        else:
            messages.success(
                request,
                "Questionnaire created: add its questions." if created else "Settings saved.",
            )
            return redirect(
                "questionnaire_edit", course_slug=course_slug, chapter_slug=chapter_slug
            )
    questions: list[Question] = []
    archived: list[Question] = []
    if questionnaire is not None and questionnaire.pk:
        all_questions = list(questionnaire.questions.all())
        questions = [q for q in all_questions if not q.archived]
        archived = [q for q in all_questions if q.archived]
    context = {
        "course": course_access.course,
        "chapter": chapter,
        "questionnaire": questionnaire,
        "form": form,
        "questions": questions,
        "archived": archived,
        "previewing": preview.preview_enabled(request, course_access.course),
        "kinds": [(value, label, KIND_HELP[value]) for value, label in Question.Kind.choices],
    }
    return render(request, "courses/authoring/questionnaire_builder.html", context)


def _questionnaire_or_404(chapter: Chapter) -> Questionnaire:
    questionnaire = Questionnaire.objects.filter(chapter=chapter).first()
    if questionnaire is None:
        raise Http404("Create the questionnaire first.")
    return questionnaire


def _free_key(questionnaire: Questionnaire) -> str:
    """A key to start a new question with: q-1, q-2, ... the first one not taken."""
    taken = set(questionnaire.questions.values_list("key", flat=True))
    number = len(taken) + 1
    while f"q-{number}" in taken:
        number += 1
    return f"q-{number}"


def _question_page(
    request: HttpRequest,
    *,
    form: QuestionForm,
    choices: BaseFormSet | None,
    rubric: BaseFormSet | None,
    row_errors: dict[str, list[str]],
    **context: Any,
) -> HttpResponse:
    return render(
        request,
        "courses/authoring/question_form.html",
        {
            "form": form,
            "choices": choices,
            "rubric": rubric,
            "choice_errors": row_errors.get("choices", []),
            "rubric_errors": row_errors.get("rubric", []),
            "kind_help": KIND_HELP[form.kind],
            "kind_label": Question.Kind(form.kind).label,
            **context,
        },
    )


def _row_formsets(
    request: HttpRequest, kind: str, question: Question | None
) -> tuple[BaseFormSet | None, BaseFormSet | None]:
    data = request.POST if request.method == "POST" else None
    choices = rubric = None
    if kind in (Question.Kind.SINGLE, Question.Kind.MULTIPLE):
        initial = choice_formset_initial(question)
        choices = ChoiceFormSet(data, prefix="choices", initial=initial or None)
    if kind == Question.Kind.FREE_TEXT:
        rubric = RubricFormSet(data, prefix="rubric", initial=rubric_formset_initial(question))
    return choices, rubric


def _save_question(
    request: HttpRequest,
    *,
    form: QuestionForm,
    choices: BaseFormSet | None,
    rubric: BaseFormSet | None,
    save: Any,
) -> tuple[Question | None, dict[str, list[str]]]:
    """Validate the form and its rows and call ``save(data)``; the question, or the errors."""
    valid = form.is_valid()
    valid = (choices is None or choices.is_valid()) and valid
    valid = (rubric is None or rubric.is_valid()) and valid
    if not valid:
        return None, {}
    data = form.question_data(
        choices=choice_rows(choices) if choices is not None else [],
        rubric=rubric_rows(rubric) if rubric is not None else [],
    )
    try:
        return save(data), {}
    except ValidationError as error:
        return None, _errors_to_form(form, error)


@login_required
@require_http_methods(["GET", "POST"])
def question_create(
    request: AuthenticatedRequest, course_slug: str, chapter_slug: str
) -> HttpResponse:
    course_access, chapter = access.chapter_get_for_instructor(
        user=request.user, course_slug=course_slug, chapter_slug=chapter_slug
    )
    questionnaire = _questionnaire_or_404(chapter)
    kind_form = QuestionKindForm(request.GET if "kind" in request.GET else None)
    context = {"course": course_access.course, "chapter": chapter, "questionnaire": questionnaire}
    if not kind_form.is_valid():
        kinds = [(value, label, KIND_HELP[value]) for value, label in Question.Kind.choices]
        return render(
            request,
            "courses/authoring/question_kind.html",
            {**context, "kind_form": kind_form, "kinds": kinds},
        )
    kind = kind_form.cleaned_data["kind"]
    data = request.POST if request.method == "POST" else None
    form = QuestionForm(data, kind=kind, initial={"key": _free_key(questionnaire)})
    choices, rubric = _row_formsets(request, kind, None)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        question, errors = _save_question(
            request,
            form=form,
            choices=choices,
            rubric=rubric,
            save=lambda d: authoring.question_create(
                questionnaire=questionnaire, kind=kind, data=d
            ),
        )
        if question is not None:
            messages.success(request, f"Question “{question.key}” added.")
            return redirect(
                "questionnaire_edit", course_slug=course_slug, chapter_slug=chapter_slug
            )
        messages.error(request, "Some fields need fixing; nothing was saved.")
    return _question_page(
        request,
        form=form,
        choices=choices,
        rubric=rubric,
        row_errors=errors,
        question=None,
        **context,
    )


@login_required
@require_http_methods(["GET", "POST"])
def question_edit(
    request: AuthenticatedRequest, course_slug: str, chapter_slug: str, question_id: int
) -> HttpResponse:
    course_access, question = access.question_get_for_instructor(
        user=request.user,
        course_slug=course_slug,
        chapter_slug=chapter_slug,
        question_id=question_id,
    )
    form = QuestionForm.for_question(question, request.POST if request.method == "POST" else None)
    choices, rubric = _row_formsets(request, question.kind, question)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        saved, errors = _save_question(
            request,
            form=form,
            choices=choices,
            rubric=rubric,
            save=lambda d: authoring.question_update(question=question, data=d),
        )
        if saved is not None:
            messages.success(request, f"Question “{saved.key}” saved.")
            url = reverse(
                "questionnaire_edit",
                kwargs={"course_slug": course_slug, "chapter_slug": chapter_slug},
            )
            return redirect(f"{url}#question-{saved.pk}")
        messages.error(request, "Some fields need fixing; nothing was saved.")
    questionnaire = question.questionnaire
    return _question_page(
        request,
        form=form,
        choices=choices,
        rubric=rubric,
        row_errors=errors,
        question=question,
        course=course_access.course,
        chapter=questionnaire.chapter,
        questionnaire=questionnaire,
    )


def _back_to_builder(
    course_slug: str, chapter_slug: str, question_id: int | None = None
) -> HttpResponse:
    url = reverse(
        "questionnaire_edit", kwargs={"course_slug": course_slug, "chapter_slug": chapter_slug}
    )
    return redirect(f"{url}#question-{question_id}" if question_id else url)


def _question(
    request: AuthenticatedRequest,
    course_slug: str,
    chapter_slug: str,
    question_id: int,
    *,
    archived: bool = False,
) -> Question:
    """The question a builder button acts on; the course's instructors only."""
    return access.question_get_for_instructor(
        user=request.user,
        course_slug=course_slug,
        chapter_slug=chapter_slug,
        question_id=question_id,
        archived=archived,
    )[1]


@login_required
@require_POST
def question_move(
    request: AuthenticatedRequest, course_slug: str, chapter_slug: str, question_id: int
) -> HttpResponse:
    question = _question(request, course_slug, chapter_slug, question_id)
    authoring.question_move(question=question, offset=_direction(request))
    return _back_to_builder(course_slug, chapter_slug, question.pk)


@login_required
@require_POST
def question_duplicate(
    request: AuthenticatedRequest, course_slug: str, chapter_slug: str, question_id: int
) -> HttpResponse:
    question = _question(request, course_slug, chapter_slug, question_id)
    copy = authoring.question_duplicate(question=question)
    messages.success(request, f"Question duplicated as “{copy.key}”.")
    return _back_to_builder(course_slug, chapter_slug, copy.pk)


@login_required
@require_POST
def question_remove(
    request: AuthenticatedRequest, course_slug: str, chapter_slug: str, question_id: int
) -> HttpResponse:
    question = _question(request, course_slug, chapter_slug, question_id)
    key = question.key
    if authoring.question_remove(question=question):
        messages.success(
            request,
            f"Question “{key}” removed from the questionnaire. Students had answered it, so it is "
            "archived: their answers and scores are kept, and new attempts no longer ask it.",
        )
    else:
        messages.success(request, f"Question “{key}” deleted.")
    return _back_to_builder(course_slug, chapter_slug)


@login_required
@require_POST
def question_restore(
    request: AuthenticatedRequest, course_slug: str, chapter_slug: str, question_id: int
) -> HttpResponse:
    question = _question(request, course_slug, chapter_slug, question_id, archived=True)
    authoring.question_restore(question=question)
    messages.success(
        request, f"Question “{question.key}” is back, as the last question; new attempts ask it."
    )
    return _back_to_builder(course_slug, chapter_slug, question.pk)
