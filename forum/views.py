"""Forum pages. Each view: access check, then form, then service, then redirect or render."""

from __future__ import annotations

from functools import lru_cache

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.backends.utils import csrf_input
from django.template.loader import render_to_string
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from courses.models import Question
from forum import access, notifications, page_parts, selectors, services
from forum.access import PostAction, ThreadAccess
from forum.errors import run_error_of
from forum.forms import (
    AskForm,
    FlagForm,
    MoveForm,
    PostEditForm,
    PreferenceForm,
    ReplyForm,
    SearchForm,
    SplitForm,
    ThreadForm,
)
from forum.models import Category, Post
from forum.rendering import quote_markdown
from forum.rules import PostRefused
from forum.search import SearchHit, posts_search
from grader import page_parts as grader_page_parts
from grader.models import Assignment
from topdown import fragments


class AuthenticatedRequest(HttpRequest):
    """What a view behind ``login_required`` gets."""

    user: User


def post_url(post: Post) -> str:
    """Where a post is: its thread's page that holds it, scrolled to it."""
    page = selectors.thread_page_of(post.number)
    url = reverse("forum:thread_detail", args=[post.thread_id])
    return f"{url}?page={page}#post-{post.number}" if page > 1 else f"{url}#post-{post.number}"


def category_url(category: Category) -> str:
    course_slug = category.course.slug
    chapter_slug = None
    if category.chapter_id is not None and category.chapter is not None:
        chapter_slug = category.chapter.slug
    return _category_url(course_slug, chapter_slug, get_script_prefix(), get_urlconf())


@lru_cache(maxsize=1024)
def _category_url(
    course_slug: str, chapter_slug: str | None, prefix: str, urlconf: str | None
) -> str:
    # ``prefix`` and ``urlconf`` are part of the key only: reverse() reads them itself.
    if chapter_slug is None:
        return reverse("forum:category_general", args=[course_slug])
    return reverse("forum:category_chapter", args=[course_slug, chapter_slug])


def _thread_context(thread_access: ThreadAccess, **extra: object) -> dict[str, object]:
    """What every page about one thread shows around its own content: course, category, thread."""
    thread = thread_access.thread
    return {
        "access": thread_access.access,
        "thread_access": thread_access,
        "course": thread.course,
        "category": thread.category,
        "category_url": category_url(thread.category),
        "thread": thread,
        **extra,
    }


# --- The course's forum -------------------------------------------------------------------------


@login_required
@require_GET
def forum_index(request: AuthenticatedRequest, course_slug: str) -> HttpResponse:
    course_access = access.forum_get_for_member(user=request.user, course_slug=course_slug)
    course = course_access.course
    services.categories_sync(course=course)
    context = {
        "access": course_access,
        "course": course,
        "rows": selectors.categories_for_forum(
            course=course, user=request.user, is_staff=course_access.is_staff
        ),
        "search_form": SearchForm(),
        "flagged": len(selectors.flagged_posts_for_course(course=course))
        if course_access.is_staff
        else 0,
    }
    return render(request, "forum/index.html", context)


def _category_page(
    request: AuthenticatedRequest,
    *,
    course_access: access.CourseAccess,
    category: Category,
    anchor: Question | Assignment | None = None,
    reader: access.CategoryReader | None = None,
) -> HttpResponse:
    if reader is not None:
        visit, watching = reader.visit, reader.watching
    else:
        visit = selectors.category_visit_for(user=request.user, category=category)
        watching = selectors.category_watching(user=request.user, category=category)
    since = services.category_visit(user=request.user, category=category, visit=visit)
    listing = selectors.threads_for_category(
        category=category,
        user=request.user,
        is_staff=course_access.is_staff,
        since=since,
        page_number=request.GET.get("page"),
        question_id=anchor.pk if isinstance(anchor, Question) else None,
        assignment_id=anchor.pk if isinstance(anchor, Assignment) else None,
    )
    new_url = reverse("forum:thread_create", args=[course_access.course.slug])
    if isinstance(anchor, Question):
        new_url += f"?question={anchor.pk}"
    elif isinstance(anchor, Assignment):
        new_url += f"?assignment={anchor.pk}"
    elif category.chapter_id:
        new_url += f"?chapter={category.chapter.slug}"  # type: ignore[union-attr]
    course = course_access.course
    here_url = category_url(category)
    context = {
        "access": course_access,
        "course": course,
        "category": category,
        "category_url": here_url,
        "anchor": anchor,
        "listing": listing,
        "breadcrumbs": page_parts.breadcrumbs(
            course_slug=course.slug,
            course_title=course.title,
            category_title=category.display_title,
            category_url=here_url,
            here="Threads about this" if anchor is not None else None,
        ),
        "head": page_parts.category_head(
            request,
            category=category,
            category_url=here_url,
            anchor=anchor,
            new_url=new_url,
            watching=watching,
        ),
        "rows_html": _thread_rows_html(listing),
        "page_obj": listing.page,
        "pagination": grader_page_parts.pagination(listing.page),
        "watching": watching,
        "new_url": new_url,
    }
    return render(request, "forum/category.html", context)


def _thread_rows_html(listing: selectors.ThreadListing) -> SafeString:
    """The page's threads, each drawn once per process for what it shows (topdown.fragments)."""
    contexts = []
    for row in listing.rows:
        thread = row.thread
        contexts.append(
            {
                "detail_url": row.links["detail"],
                "unread_url": row.links["unread"],
                "title": thread.title,
                "is_pinned": thread.is_pinned,
                "is_locked": thread.is_locked,
                "is_hidden": thread.is_hidden,
                "is_answered": thread.is_answered,
                "author": thread.author,
                "question_key": thread.question_key,
                "assignment_title": thread.assignment_title,
                "post_count": thread.post_count,
                "last_poster": thread.last_poster,
                "last_posted_at": thread.last_posted_at,
                "last_posted_ago": fragments.natural_time(thread.last_posted_at),
                "is_new": row.is_new,
                "new_posts": row.new_posts,
            }
        )
    return fragments.render_fragments("forum/includes/thread_row.html", contexts)


@login_required
@require_GET
def category_detail(
    request: AuthenticatedRequest, course_slug: str, chapter_slug: str | None = None
) -> HttpResponse:
    reader = access.category_get_for_reader(
        user=request.user, course_slug=course_slug, chapter_slug=chapter_slug
    )
    return _category_page(
        request, course_access=reader.access, category=reader.category, reader=reader
    )


@login_required
@require_GET
def anchor_detail(
    request: AuthenticatedRequest, course_slug: str, kind: str, anchor_id: int
) -> HttpResponse:
    """The threads about one question or assignment ("Discuss this")."""
    course_access, anchor, chapter = access.anchor_get_for_user(
        user=request.user, course_slug=course_slug, kind=kind, anchor_id=anchor_id
    )
    category = services.category_ensure(course=course_access.course, chapter=chapter)
    return _category_page(request, course_access=course_access, category=category, anchor=anchor)


@login_required
@require_POST
def category_watch(
    request: AuthenticatedRequest, course_slug: str, chapter_slug: str | None = None
) -> HttpResponse:
    _, category = access.category_get_for_user(
        user=request.user, course_slug=course_slug, chapter_slug=chapter_slug
    )
    if services.watch_toggle(user=request.user, category=category):
        messages.success(
            request,
            f"You now watch {category.display_title}: new threads and "
            "posts there come to your notifications.",
        )
    else:
        messages.info(request, f"You no longer watch {category.display_title}.")
    return redirect(category_url(category))


@login_required
@require_http_methods(["GET", "POST"])
def thread_create(request: AuthenticatedRequest, course_slug: str) -> HttpResponse:
    course_access = access.forum_get_for_member(user=request.user, course_slug=course_slug)
    anchor: Question | Assignment | None = None
    chapter_slug = request.GET.get("chapter") or None
    for kind in access.ANCHOR_KINDS:
        raw = request.GET.get(kind, "")
        if raw.isdigit():
            _, anchor, chapter = access.anchor_get_for_user(
                user=request.user, course_slug=course_slug, kind=kind, anchor_id=int(raw)
            )
            chapter_slug = chapter.slug
            break
    _, category = access.category_get_for_user(
        user=request.user, course_slug=course_slug, chapter_slug=chapter_slug
    )
    form = ThreadForm(request.POST or None, answers=anchor is not None)
    if request.method == "POST" and form.is_valid():
        try:
            thread = services.thread_create(
                author=request.user,
                access=course_access,
                category=category,
                title=form.cleaned_data["title"],
                body=form.cleaned_data["body"],
                question=anchor if isinstance(anchor, Question) else None,
                assignment=anchor if isinstance(anchor, Assignment) else None,
                contains_answer=form.cleaned_data.get("contains_answer", False),
            )
        except PostRefused as error:
            form.add_error(None, str(error))
        else:
            return redirect("forum:thread_detail", thread_id=thread.pk)
    context = {
        "access": course_access,
        "course": course_access.course,
        "category": category,
        "category_url": category_url(category),
        "anchor": anchor,
        "form": form,
    }
    return render(request, "forum/thread_form.html", context)


@login_required
@require_GET
def search(request: AuthenticatedRequest, course_slug: str) -> HttpResponse:
    course_access = access.forum_get_for_member(user=request.user, course_slug=course_slug)
    form = SearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    try:
        page = max(int(request.GET.get("page", "1")), 1)
    except ValueError:
        page = 1
    results = (
        posts_search(access=course_access, user=request.user, query=query, page=page)
        if query
        else None
    )
    context = {
        "access": course_access,
        "course": course_access.course,
        "form": form,
        "results": results,
        "hits_html": _search_hits_html(results.hits) if results else "",
    }
    return render(request, "forum/search.html", context)


def _search_hits_html(hits: list[SearchHit]) -> SafeString:
    """The results, each drawn once per process for what it shows (topdown.fragments)."""
    links = selectors.Links({"detail": "forum:post_detail"})
    return fragments.render_fragments(
        "forum/includes/search_hit.html",
        (
            {
                "url": links.for_id(hit.post.pk)["detail"],
                "title": hit.post.thread.title,
                "number": hit.post.number,
                "snippet": hit.snippet,
                "author": hit.post.author.public_name if hit.post.author else "",
                "created_at": hit.post.created_at,
                "created_ago": fragments.natural_time(hit.post.created_at),
            }
            for hit in hits
        ),
    )


# --- A thread -----------------------------------------------------------------------------------


@login_required
@require_GET
def thread_detail(request: AuthenticatedRequest, thread_id: int) -> HttpResponse:
    thread_access = access.thread_get_for_user(user=request.user, thread_id=thread_id)
    thread = thread_access.thread
    page = selectors.thread_page(thread_access=thread_access, page_number=request.GET.get("page"))
    last_read = getattr(thread, "last_read_number", None)
    if page.last_number > (last_read or 0):
        services.thread_read_mark(
            user=request.user, thread=thread, number=page.last_number, last_read=last_read
        )
        notifications.notifications_read_for_thread(
            user=request.user, thread=thread, up_to=page.last_number
        )
    accepted_url = post_url(thread.accepted_post) if thread.accepted_post else ""
    # One token for the page's forms, as {% csrf_token %} gives: masking one for each form
    # costs more than the rest of the form's HTML.
    token = csrf_input(request)
    context = _thread_context(
        thread_access,
        page=page,
        breadcrumbs=page_parts.breadcrumbs(
            course_slug=thread.course.slug,
            course_title=thread.course.title,
            category_title=thread.category.display_title,
            category_url=category_url(thread.category),
            thread=page_parts.ThreadRef(thread.pk, thread.title),
        ),
        head=page_parts.thread_head(
            thread_access, page=page, accepted_url=accepted_url, csrf_token=token
        ),
        pages=page_parts.thread_pages(page),
        posts=_posts_html(thread_access, page, csrf_token=token),
        reply_fields=_reply_fields(answers=thread_access.can_mark_answers)
        if thread_access.can_reply
        else None,
        accepted_url=accepted_url,
        csrf_field=token,
    )
    return render(request, "forum/thread.html", context)


def _reply_fields(*, answers: bool) -> SafeString:
    """An empty reply form's fields: the same for every thread that has answers to hide, and
    for every other (``ReplyForm`` is built from ``answers`` alone)."""
    return fragments.render_memoised(
        "forum/includes/reply_fields.html",
        key=("forum reply", answers),
        context=lambda: {"form": ReplyForm(answers=answers)},
    )


def _posts_html(
    thread_access: ThreadAccess, page: selectors.ThreadPage, *, csrf_token: str
) -> SafeString:
    """The page's posts. Around each post's text, its start and its end are drawn once per
    process for what they show to this reader (their like, whether the post is new to them,
    what they may do); the text itself (stored, sanitised HTML) stays out of the cached
    fragments, which keeps them small, and out of the HTML the CSRF token is put in."""
    quote_base = (
        reverse("forum:thread_reply", args=[thread_access.thread.pk])
        if thread_access.can_reply
        else ""
    )
    contexts = []
    for row in page.rows:
        post = row.post
        contexts.append(
            {
                "number": post.number,
                "author": post.author.public_name if post.author else "",
                "role": row.role,
                "created_at": post.created_at,
                "created_ago": fragments.natural_time(post.created_at),
                "edit_count": post.edit_count,
                "is_new": row.is_new,
                "is_accepted": row.is_accepted,
                "contains_answer": post.contains_answer,
                "is_hidden": post.is_hidden,
                "visible": row.visible,
                "about_question": thread_access.thread.question_id is not None,
                "is_own": row.is_own,
                "liked": row.liked,
                "like_count": post.like_count,
                "quote_url": f"{quote_base}?quote={post.pk}" if quote_base else "",
                "can_accept": thread_access.can_accept,
                "can_edit": row.can_edit,
                "can_moderate": thread_access.can_moderate,
                "can_mark_answers": thread_access.can_mark_answers,
                **{f"{name}_url": url for name, url in row.links.items()},
            }
        )
    starts = fragments.render_each("forum/includes/post_start.html", contexts)
    ends = fragments.render_each("forum/includes/post_end.html", contexts)
    parts: list[str] = []
    for row, start, end in zip(page.rows, starts, ends, strict=True):
        parts.append(start)
        if row.visible:
            report = ""
            if row.report is not None:
                report = render_to_string(
                    "forum/includes/run_error.html",
                    {"report": row.report, "show_code": row.show_code, "is_author": row.is_own},
                )
            # body_html is stored sanitised (topdown.markdown); the report, an autoescaped
            # template's output.
            parts += ('<div class="post-body prose">', row.post.body_html, "</div>", report)
        parts.append(end.replace(fragments.CSRF_SLOT, csrf_token))
    return mark_safe("".join(parts))  # noqa: S308 - each part is safe, see above


@login_required
@require_GET
def thread_first_unread(request: AuthenticatedRequest, thread_id: int) -> HttpResponse:
    thread_access = access.thread_get_for_user(user=request.user, thread_id=thread_id)
    thread = thread_access.thread
    number = min((getattr(thread, "last_read_number", None) or 0) + 1, thread.post_count)
    post = Post(thread_id=thread.pk, number=number)
    return redirect(post_url(post))


def _reply(
    request: AuthenticatedRequest, thread_access: ThreadAccess, form: ReplyForm
) -> HttpResponse | None:
    try:
        post = services.post_reply_create(
            author=request.user,
            thread_access=thread_access,
            body=form.cleaned_data["body"],
            contains_answer=form.cleaned_data.get("contains_answer", False),
        )
    except PostRefused as error:
        form.add_error(None, str(error))
        return None
    return redirect(post_url(post))


@login_required
@require_http_methods(["GET", "POST"])
def thread_reply(request: AuthenticatedRequest, thread_id: int) -> HttpResponse:
    """The reply page: where a reply that needs fixing comes back, and where quoting starts."""
    thread_access = access.thread_get_for_user(user=request.user, thread_id=thread_id, reply=True)
    answers = thread_access.can_mark_answers
    form = ReplyForm(request.POST or None, answers=answers)
    if request.method == "POST":
        if form.is_valid():
            response = _reply(request, thread_access, form)
            if response is not None:
                return response
    elif request.GET.get("quote", "").isdigit():
        quoted = access.post_get_for_user(
            user=request.user, post_id=int(request.GET["quote"]), action=PostAction.QUOTE
        ).post
        if quoted.thread_id != thread_access.thread.pk:
            raise Http404("That post is in another thread.")
        form = ReplyForm(
            answers=answers,
            initial={
                "body": quote_markdown(
                    body=quoted.body,
                    username=quoted.author.username if quoted.author else "someone",
                    post_url=reverse("forum:post_detail", args=[quoted.pk]),
                    number=quoted.number,
                ),
                # Quoting an answer repeats it: the reply hides it too unless its author unticks.
                "contains_answer": quoted.contains_answer,
            },
        )
    context = _thread_context(
        thread_access,
        form=form,
    )
    return render(request, "forum/reply.html", context)


@login_required
@require_POST
def thread_watch(request: AuthenticatedRequest, thread_id: int) -> HttpResponse:
    thread_access = access.thread_get_for_user(user=request.user, thread_id=thread_id)
    if services.watch_toggle(user=request.user, thread=thread_access.thread):
        messages.success(request, "You now watch this thread.")
    else:
        messages.info(request, "You no longer watch this thread.")
    return redirect("forum:thread_detail", thread_id=thread_id)


MODERATION_MESSAGES = {
    services.ThreadAction.PIN: "Pinned: the thread stays at the top of its category.",
    services.ThreadAction.UNPIN: "Unpinned.",
    services.ThreadAction.LOCK: "Locked: only staff can post in it now.",
    services.ThreadAction.UNLOCK: "Unlocked.",
    services.ThreadAction.HIDE: "Hidden from students.",
    services.ThreadAction.UNHIDE: "Visible to students again.",
}


@login_required
@require_POST
def thread_moderate(request: AuthenticatedRequest, thread_id: int) -> HttpResponse:
    thread_access = access.thread_get_for_staff(user=request.user, thread_id=thread_id)
    action = request.POST.get("action", "")
    try:
        services.thread_moderate(staff=thread_access, action=action)
    except PostRefused as error:
        messages.error(request, str(error))
    else:
        messages.success(request, MODERATION_MESSAGES[action])
    return redirect("forum:thread_detail", thread_id=thread_id)


@login_required
@require_http_methods(["GET", "POST"])
def thread_move(request: AuthenticatedRequest, thread_id: int) -> HttpResponse:
    thread_access = access.thread_get_for_staff(user=request.user, thread_id=thread_id)
    thread = thread_access.thread
    categories = selectors.categories_for_move(course=thread.course)
    form = MoveForm(
        request.POST or None, categories=categories, initial={"category": thread.category_id}
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.thread_move(staff=thread_access, category=form.cleaned_data["category"])
        except PostRefused as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Moved to {form.cleaned_data['category'].display_title}.")
            return redirect("forum:thread_detail", thread_id=thread_id)
    context = _thread_context(
        thread_access,
        form=form,
    )
    return render(request, "forum/move.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def thread_split(request: AuthenticatedRequest, thread_id: int) -> HttpResponse:
    thread_access = access.thread_get_for_staff(user=request.user, thread_id=thread_id)
    thread = thread_access.thread
    replies = selectors.split_candidates(thread=thread)
    choices = [
        (
            post.number,
            f"#{post.number} by {post.author.public_name if post.author else 'a former member'}",
        )
        for post in replies
    ]
    form = SplitForm(
        request.POST or None,
        categories=selectors.categories_for_move(course=thread.course),
        numbers=choices,
        initial={"category": thread.category_id},
    )
    if request.method == "POST" and form.is_valid():
        try:
            new = services.thread_split(
                staff=thread_access,
                numbers=form.cleaned_data["numbers"],
                title=form.cleaned_data["title"],
                category=form.cleaned_data["category"],
            )
        except PostRefused as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Moved {len(form.cleaned_data['numbers'])} posts here.")
            return redirect("forum:thread_detail", thread_id=new.pk)
    context = _thread_context(
        thread_access,
        form=form,
        replies={post.number: post for post in replies},
    )
    return render(request, "forum/split.html", context)


# --- A post -------------------------------------------------------------------------------------


@login_required
@require_GET
def post_detail(request: AuthenticatedRequest, post_id: int) -> HttpResponse:
    post = access.post_get_for_user(user=request.user, post_id=post_id).post
    return redirect(post_url(post))


@login_required
@require_http_methods(["GET", "POST"])
def post_edit(request: AuthenticatedRequest, post_id: int) -> HttpResponse:
    post_access = access.post_get_for_user(
        user=request.user, post_id=post_id, action=PostAction.EDIT
    )
    post, thread = post_access.post, post_access.thread
    initial = {"body": post.body, "contains_answer": post.contains_answer, "title": thread.title}
    form = PostEditForm(
        request.POST or None,
        initial=initial,
        answers=post_access.thread_access.can_mark_answers,
        title=post.number == 1,
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.post_edit(
                editor=request.user,
                thread_access=post_access.thread_access,
                post=post,
                body=form.cleaned_data["body"],
                title=form.cleaned_data.get("title"),
                contains_answer=form.cleaned_data.get("contains_answer"),
            )
        except PostRefused as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Saved. The earlier version is in the post's history.")
            return redirect(post_url(post))
    context = _thread_context(
        post_access.thread_access,
        post=post,
        form=form,
    )
    return render(request, "forum/post_edit.html", context)


@login_required
@require_GET
def post_history(request: AuthenticatedRequest, post_id: int) -> HttpResponse:
    post_access = access.post_get_for_user(
        user=request.user, post_id=post_id, action=PostAction.HISTORY
    )
    post, thread = post_access.post, post_access.thread
    revisions = selectors.post_with_history(post=post)
    # Each version beside the one that replaced it, newest first.
    following = [*revisions[1:], None]
    versions = []
    for revision, after in zip(revisions, following, strict=True):
        versions.append(
            {
                "revision": revision,
                "body_after": after.body if after else post.body,
                "title_after": (after.title if after else thread.title) if post.number == 1 else "",
            }
        )
    context = _thread_context(
        post_access.thread_access,
        post=post,
        versions=list(reversed(versions)),
    )
    return render(request, "forum/post_history.html", context)


@login_required
@require_POST
def post_like(request: AuthenticatedRequest, post_id: int) -> HttpResponse:
    post_access = access.post_get_for_user(
        user=request.user, post_id=post_id, action=PostAction.LIKE
    )
    try:
        services.post_like_toggle(user=request.user, post=post_access.post)
    except PostRefused as error:
        messages.error(request, str(error))
    return redirect(post_url(post_access.post))


@login_required
@require_POST
def post_accept(request: AuthenticatedRequest, post_id: int) -> HttpResponse:
    post_access = access.post_get_for_user(
        user=request.user, post_id=post_id, action=PostAction.ACCEPT
    )
    try:
        accepted = services.post_accept_toggle(
            user=request.user, thread_access=post_access.thread_access, post=post_access.post
        )
    except PostRefused as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Marked as the answer." if accepted else "No longer the answer.")
    return redirect(post_url(post_access.post))


@login_required
@require_http_methods(["GET", "POST"])
def post_flag(request: AuthenticatedRequest, post_id: int) -> HttpResponse:
    post_access = access.post_get_for_user(
        user=request.user, post_id=post_id, action=PostAction.FLAG
    )
    post = post_access.post
    form = FlagForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.post_flag(
                user=request.user,
                post=post,
                reason=form.cleaned_data["reason"],
                comment=form.cleaned_data["comment"],
            )
        except PostRefused as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Thank you: the course staff will look at this post.")
            return redirect(post_url(post))
    context = _thread_context(
        post_access.thread_access,
        post=post,
        form=form,
    )
    return render(request, "forum/flag.html", context)


@login_required
@require_POST
def post_moderate(request: AuthenticatedRequest, post_id: int) -> HttpResponse:
    post_access = access.post_get_for_user(
        user=request.user, post_id=post_id, action=PostAction.MODERATE
    )
    post, staff = post_access.post, post_access.thread_access
    action = request.POST.get("action", "")
    try:
        if action in ("hide", "unhide"):
            services.post_hide(staff=staff, post=post, hidden=action == "hide")
            messages.success(request, "Post hidden." if action == "hide" else "Post shown again.")
        elif action in ("mark_answer", "unmark_answer"):
            services.post_answer_mark(
                thread_access=staff, post=post, contains_answer=action == "mark_answer"
            )
            messages.success(request, "Marking saved.")
        elif action == "dismiss_flags":
            count = services.flags_resolve(staff=staff, post=post, hide=False)
            messages.success(request, f"Dismissed {count} flag{'s' if count != 1 else ''}.")
        else:
            messages.error(request, "Unknown moderation action.")
    except PostRefused as error:
        messages.error(request, str(error))
    back = request.POST.get("next", "")
    if back == "queue":
        return redirect("forum:moderation", course_slug=post_access.thread.course.slug)
    return redirect(post_url(post))


@login_required
@require_GET
def moderation(request: AuthenticatedRequest, course_slug: str) -> HttpResponse:
    course_access = access.moderation_get_for_staff(user=request.user, course_slug=course_slug)
    context = {
        "access": course_access,
        "course": course_access.course,
        "flagged": selectors.flagged_posts_for_course(course=course_access.course),
        "hidden": selectors.hidden_posts_for_course(course=course_access.course),
    }
    return render(request, "forum/moderation.html", context)


# --- Asking about a run -------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def ask_about_submission(request: AuthenticatedRequest, submission_id: int) -> HttpResponse:
    course_access, submission = access.submission_get_for_asking(
        user=request.user, submission_id=submission_id
    )
    assignment = submission.assignment
    run_error = run_error_of(submission)
    category = services.category_ensure(course=course_access.course, chapter=assignment.chapter)
    title, body = services.submission_question_text(run_error=run_error, assignment=assignment)
    form = AskForm(request.POST or None, initial={"title": title, "body": body})
    if request.method == "POST" and form.is_valid():
        try:
            thread = services.thread_create(
                author=request.user,
                access=course_access,
                category=category,
                title=form.cleaned_data["title"],
                body=form.cleaned_data["body"],
                submission=submission,
                show_code_to_staff=form.cleaned_data["show_code_to_staff"],
            )
        except PostRefused as error:
            form.add_error(None, str(error))
        else:
            return redirect("forum:thread_detail", thread_id=thread.pk)
    context = {
        "access": course_access,
        "course": course_access.course,
        "category": category,
        "category_url": category_url(category),
        "submission": submission,
        "assignment": assignment,
        "run_error": run_error,
        "group": selectors.error_group(
            assignment_id=assignment.pk, signature=run_error.signature, user=request.user
        ),
        "form": form,
    }
    return render(request, "forum/ask.html", context)


# --- Notifications ------------------------------------------------------------------------------


@login_required
@require_GET
def notification_list(request: AuthenticatedRequest) -> HttpResponse:
    page = selectors.notifications_for_user(user=request.user, page_number=request.GET.get("page"))
    return render(request, "forum/notifications.html", {"page_obj": page})


@login_required
@require_GET
def notification_open(request: AuthenticatedRequest, notification_id: int) -> HttpResponse:
    notification = access.notification_get_for_user(
        user=request.user, notification_id=notification_id
    )
    notifications.notification_read(notification=notification)
    if notification.post is not None:
        return redirect(post_url(notification.post))
    return redirect("forum:thread_detail", thread_id=notification.thread_id)


@login_required
@require_POST
def notifications_read_all(request: AuthenticatedRequest) -> HttpResponse:
    count = notifications.notifications_read_all(user=request.user)
    messages.success(request, f"Marked {count} notification{'s' if count != 1 else ''} as read.")
    return redirect("forum:notifications")


@login_required
@require_GET
def notification_count(request: AuthenticatedRequest) -> JsonResponse:
    """What the bell in the navigation asks for after the page has loaded."""
    count = selectors.notification_unread_count(user=request.user)
    response = JsonResponse({"unread": count, "at": timezone.now().isoformat()})
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: AuthenticatedRequest) -> HttpResponse:
    preference = notifications.preferences_for(user=request.user)
    form = PreferenceForm(request.POST or None, instance=preference)
    if request.method == "POST" and form.is_valid():
        notifications.preferences_update(
            user=request.user,
            email_each=form.cleaned_data["email_each"],
            email_digest=form.cleaned_data["email_digest"],
        )
        messages.success(request, "Your notification settings are saved.")
        return redirect("forum:preferences")
    return render(request, "forum/preferences.html", {"form": form})
