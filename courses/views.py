from __future__ import annotations

import uuid
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import User
from courses import access, preview, selectors, services
from courses.forms import (
    EnrolForm,
    QuestionnaireForm,
    ReviewForm,
    SelfAssessmentForm,
)
from courses.models import Answer, Enrolment, Role
from topdown import fragments


def home(request: HttpRequest) -> HttpResponse:
    courses = selectors.courses_for_user(user=request.user)
    return render(request, "courses/home.html", {"courses": courses})


def course_detail(request: HttpRequest, course_slug: str) -> HttpResponse:
    course_access = access.course_access_for_user(user=request.user, course_slug=course_slug)
    course_access = preview.viewer_access(request, course_access)
    rows = selectors.chapters_with_progress(
        course=course_access.course,
        user=request.user if course_access.is_member else None,
        include_drafts=course_access.sees_drafts,
    )
    context = {
        "access": course_access,
        "course": course_access.course,
        "rows": rows,
        "course_percent": selectors.course_progress_percent(rows),
        "enrol_form": EnrolForm(),
    }
    return render(request, "courses/course_detail.html", context)


@login_required
@require_POST
def course_enrol(request: HttpRequest, course_slug: str) -> HttpResponse:
    course_access = access.course_access_for_user(user=request.user, course_slug=course_slug)
    form = EnrolForm(request.POST)
    if course_access.is_member:
        messages.info(request, "You are already enrolled in this course.")
    elif form.is_valid():
        try:
            services.enrolment_create(
                user=request.user,
                course=course_access.course,
                invite_code=form.cleaned_data["invite_code"],
            )
            messages.success(request, f"You are enrolled in {course_access.course.title}.")
        except services.CourseError as error:
            messages.error(request, str(error))
    return redirect("course_detail", course_slug=course_slug)


@login_required
def chapter_detail(request: HttpRequest, course_slug: str, chapter_slug: str) -> HttpResponse:
    course_access, chapter, outline = access.chapter_get_for_user(
        user=request.user, course_slug=course_slug, chapter_slug=chapter_slug
    )
    course_access = preview.viewer_access(request, course_access)
    rows = selectors.chapters_with_progress(
        course=course_access.course, user=request.user, chapters=outline
    )
    index = next(i for i, row in enumerate(rows) if row.chapter.id == chapter.id)
    row = rows[index]
    course = course_access.course
    assignments = selectors.chapter_assignments(
        chapter=chapter, include_drafts=course_access.sees_drafts
    )
    previous = rows[index - 1].chapter if index > 0 else None
    following = rows[index + 1].chapter if index + 1 < len(rows) else None
    # The page is three fragments (topdown.fragments) around the forum's panel, each from the
    # plain values it shows: the viewer's progress is part of the article's.
    parts = fragments.Renderer()
    context = {
        "access": course_access,
        "course": course,
        "chapter": chapter,
        "article": parts.fragment(
            "courses/includes/chapter_article.html",
            course_slug=course.slug,
            course_title=course.title,
            slug=chapter.slug,
            title=chapter.title,
            published=chapter.published,
            body=chapter.body,
            position=index + 1,
            chapter_count=len(rows),
            is_instructor=course_access.is_instructor,
            questionnaire_title=row.questionnaire.title if row.questionnaire else None,
            counts=row.questionnaire.counts if row.questionnaire else None,
            attempts=len(row.attempts),
            percent=row.percent,
            counted_id=row.counted.id if row.counted else None,
            assignments=tuple((a.slug, a.title, a.published) for a in assignments),
        ),
        "pager": parts.fragment(
            "courses/includes/chapter_pager.html",
            course_slug=course.slug,
            previous_slug=previous.slug if previous else None,
            previous_title=previous.title if previous else None,
            next_slug=following.slug if following else None,
            next_title=following.title if following else None,
        ),
        "toc": parts.fragment(
            "courses/includes/chapter_toc.html",
            course_slug=course.slug,
            current=chapter.slug,
            items=tuple(
                (
                    item.chapter.slug,
                    item.chapter.title,
                    item.questionnaire is not None,
                    item.percent,
                )
                for item in rows
            ),
        ),
    }
    return render(request, "courses/chapter_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def questionnaire_detail(request: HttpRequest, course_slug: str, chapter_slug: str) -> HttpResponse:
    course_access, questionnaire = access.questionnaire_get_for_user(
        user=request.user, course_slug=course_slug, chapter_slug=chapter_slug
    )
    course_access = preview.viewer_access(request, course_access)
    # Staff attempts never count, so no attempt limit or due date holds them back.
    unlimited = course_access.is_staff or course_access.previewing
    questions = selectors.questionnaire_questions(questionnaire=questionnaire)
    if request.method == "POST":
        form = QuestionnaireForm(request.POST, questions=questions)
        if not course_access.enrolment:
            messages.error(request, "Enrol in this course to answer its questionnaires.")
        elif form.is_valid():
            submit = "submit" in request.POST
            try:
                attempt = services.attempt_save(
                    user=request.user,
                    questionnaire=questionnaire,
                    token=form.token_value,
                    responses=form.responses(),
                    submit=submit,
                    questions=questions,
                )
            except services.AttemptAlreadySubmitted as error:
                messages.info(request, str(error))
                return redirect(
                    "attempt_detail", course_slug=course_slug, attempt_id=error.attempt.id
                )
            except services.CourseError as error:
                messages.error(request, str(error))
            else:
                if submit:
                    return redirect(
                        "attempt_detail", course_slug=course_slug, attempt_id=attempt.id
                    )
                messages.success(request, "Draft saved. You can come back and finish it later.")
                return redirect(request.path)
        else:
            messages.error(request, "Some answers need fixing; nothing was saved yet.")
    # Past attempts and the draft are only needed to show the page, not to save a submit.
    page = selectors.questionnaire_page(
        questionnaire=questionnaire, user=request.user, questions=questions
    )
    if request.method != "POST":
        # A fresh token per rendered form: submitting it twice cannot use up two attempts.
        form = QuestionnaireForm.for_draft(
            questions=page.questions,
            responses=page.draft_responses,
            token=page.draft.token if page.draft else uuid.uuid4(),
        )
    remaining = (
        None
        if unlimited
        else services.attempts_remaining(
            questionnaire=questionnaire, submitted_count=len(page.submitted)
        )
    )
    context = {
        "access": course_access,
        "course": course_access.course,
        "chapter": questionnaire.chapter,
        "questionnaire": questionnaire,
        "page": page,
        "form": form,
        "question_fields": fragments.render_fragments(
            "courses/includes/question_field.html",
            ({"field": field} for field in form.question_fields()),
        ),
        "remaining": remaining,
        # The form's hidden token, written in the template: a widget drawn through the form
        # renderer's templates costs more than the rest of the form.
        "token": form["token"].value() or "",
        "policy": fragments.render_fragment(
            "courses/includes/questionnaire_policy.html",
            remaining=remaining,
            max_attempts=questionnaire.max_attempts,
            counts=questionnaire.get_counts_display(),
            due_at=questionnaire.due_at,
            late=questionnaire.late,
            reveal=questionnaire.get_reveal_display(),
        ),
        "attempt_rows": fragments.render_fragments(
            "courses/includes/attempt_row.html",
            (
                {
                    "course_slug": course_access.course.slug,
                    "id": attempt.id,
                    "number": attempt.number,
                    "submitted_at": attempt.submitted_at,
                    "is_late": attempt.is_late,
                    "score": attempt.score,
                    "max_score": attempt.max_score,
                }
                for attempt in page.submitted
            ),
        ),
        "is_closed": not unlimited
        and services.questionnaire_is_closed(questionnaire=questionnaire),
    }
    return render(request, "courses/questionnaire.html", context)


@login_required
def attempt_detail(request: HttpRequest, course_slug: str, attempt_id: int) -> HttpResponse:
    course_access, attempt = access.attempt_get_for_user(
        user=request.user, course_slug=course_slug, attempt_id=attempt_id
    )
    course_access = preview.viewer_access(request, course_access)
    if attempt.status != attempt.Status.SUBMITTED:
        chapter = attempt.questionnaire.chapter
        return redirect("questionnaire_detail", course_slug=course_slug, chapter_slug=chapter.slug)
    questionnaire = attempt.questionnaire
    submitted_count = questionnaire.attempts.filter(
        user_id=attempt.user_id, status=attempt.Status.SUBMITTED
    ).count()
    revealed = course_access.is_staff or selectors.answers_revealed(
        questionnaire=questionnaire, submitted_count=submitted_count
    )
    answers = selectors.attempt_with_answers(attempt=attempt)
    context = {
        "access": course_access,
        "course": course_access.course,
        "chapter": questionnaire.chapter,
        "questionnaire": questionnaire,
        "attempt": attempt,
        "answers": answers,
        # Code answers wait for a worker to run their tests: the page refreshes until they report.
        "code_running": any(answer.is_running for answer in answers),
        "revealed": revealed,
        "is_own": attempt.user_id == request.user.pk,
        "remaining": services.attempts_remaining(
            questionnaire=questionnaire, submitted_count=submitted_count
        ),
        "assessments": Answer.SelfAssessment.choices,
    }
    return render(request, "courses/attempt_detail.html", context)


@login_required
@require_POST
def answer_self_assess(request: HttpRequest, course_slug: str, answer_id: int) -> HttpResponse:
    answer = get_object_or_404(Answer.objects.select_related("attempt", "question"), pk=answer_id)
    _, attempt = access.attempt_get_for_user(
        user=request.user, course_slug=course_slug, attempt_id=answer.attempt_id, write=True
    )
    form = SelfAssessmentForm(request.POST)
    if form.is_valid():
        try:
            services.answer_self_assess(
                user=request.user, answer=answer, assessment=form.cleaned_data["assessment"]
            )
            messages.success(request, "Thanks, your self-assessment is saved.")
        except services.CourseError as error:
            messages.error(request, str(error))
    else:
        messages.error(request, "Choose got it, partly or missed.")
    url = reverse("attempt_detail", kwargs={"course_slug": course_slug, "attempt_id": attempt.id})
    return redirect(f"{url}#answer-{answer.id}")


@login_required
def class_progress(request: HttpRequest, course_slug: str) -> HttpResponse:
    course_access = access.course_get_for_member(
        user=request.user, course_slug=course_slug, staff=True
    )
    chapters, table = selectors.class_progress(course=course_access.course)
    paginator = Paginator(table, 50)
    context = {
        "access": course_access,
        "course": course_access.course,
        "chapters": chapters,
        "page_obj": paginator.get_page(request.GET.get("page")),
        "student_count": len(table),
        "review_count": selectors.review_queue_count(course=course_access.course),
    }
    return render(request, "courses/class_progress.html", context)


@login_required
def student_progress(request: HttpRequest, course_slug: str, user_id: int) -> HttpResponse:
    course_access = access.course_get_for_member(
        user=request.user, course_slug=course_slug, staff=True
    )
    enrolment = Enrolment.objects.filter(
        course=course_access.course, user_id=user_id, role=Role.STUDENT
    ).first()
    if enrolment is None:
        raise Http404("No such student in this course.")
    student: User = enrolment.user
    rows = selectors.chapters_with_progress(course=course_access.course, user=student)
    context = {
        "access": course_access,
        "course": course_access.course,
        "student": student,
        "rows": rows,
        "course_percent": selectors.course_progress_percent(rows),
        "attempts": selectors.student_attempts(course=course_access.course, user_id=user_id),
    }
    return render(request, "courses/student_progress.html", context)


@login_required
def review_queue(request: HttpRequest, course_slug: str) -> HttpResponse:
    course_access = access.course_get_for_member(
        user=request.user, course_slug=course_slug, staff=True
    )
    reviewed = request.GET.get("show") == "reviewed"
    answers = selectors.review_queue(
        course=course_access.course, reviewed=reviewed, reviewer=request.user
    )
    context = {
        "access": course_access,
        "course": course_access.course,
        "reviewed": reviewed,
        "page_obj": Paginator(answers, 20).get_page(request.GET.get("page")),
    }
    return render(request, "courses/review_queue.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def answer_review(request: HttpRequest, course_slug: str, answer_id: int) -> HttpResponse:
    answer = access.answer_get_for_reviewer(
        user=request.user, course_slug=course_slug, answer_id=answer_id
    )
    rubric = selectors.rubric_for_question(question=answer.question)
    initial = {
        "score": answer.review_score,
        "feedback": answer.review_feedback,
        "rubric_items": [item["id"] for item in answer.review_rubric],
    }
    # Bound on every POST: with a rubric, ticking nothing and writing nothing is a valid review.
    data = request.POST if request.method == "POST" else None
    form = ReviewForm(data, initial=initial, points=answer.question.points, rubric=rubric)
    if request.method == "POST" and form.is_valid():
        try:
            services.answer_review(
                reviewer=request.user,
                answer=answer,
                score=form.cleaned_data.get("score"),
                rubric_item_ids=form.cleaned_data.get("rubric_items", []),
                feedback=form.cleaned_data["feedback"],
            )
        except services.CourseError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"Review saved for {answer.attempt.user.public_name}.")
            course = answer.attempt.questionnaire.chapter.course
            following = selectors.review_queue_next(course=course, reviewer=request.user)
            if following is None:
                return redirect("review_queue", course_slug=course_slug)
            return redirect("answer_review", course_slug=course_slug, answer_id=following.id)
    ticked = (
        {int(v) for v in form["rubric_items"].value() or () if str(v).isdigit()}
        if rubric
        else set()
    )
    context = {
        "course": answer.attempt.questionnaire.chapter.course,
        "answer": answer,
        "form": form,
        "rubric": [(item, item.id in ticked) for item in rubric],
        "rubric_score": min(
            sum((item.points for item in rubric if item.id in ticked), Decimal("0")),
            answer.question.points,
        ),
    }
    return render(request, "courses/answer_review.html", context)
