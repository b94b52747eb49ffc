from __future__ import annotations

from django.urls import path

from forum import views

app_name = "forum"

course = "courses/<slug:course_slug>/forum/"

urlpatterns = [
    path(course, views.forum_index, name="index"),
    path(f"{course}general/", views.category_detail, name="category_general"),
    path(f"{course}general/watch/", views.category_watch, name="category_general_watch"),
    path(
        f"{course}chapters/<slug:chapter_slug>/",
        views.category_detail,
        name="category_chapter",
    ),
    path(
        f"{course}chapters/<slug:chapter_slug>/watch/",
        views.category_watch,
        name="category_chapter_watch",
    ),
    path(
        f"{course}about/<str:kind>/<int:anchor_id>/",
        views.anchor_detail,
        name="anchor_detail",
    ),
    path(f"{course}new/", views.thread_create, name="thread_create"),
    path(f"{course}search/", views.search, name="search"),
    path(f"{course}moderation/", views.moderation, name="moderation"),
    path("forum/threads/<int:thread_id>/", views.thread_detail, name="thread_detail"),
    path("forum/threads/<int:thread_id>/unread/", views.thread_first_unread, name="thread_unread"),
    path("forum/threads/<int:thread_id>/reply/", views.thread_reply, name="thread_reply"),
    path("forum/threads/<int:thread_id>/watch/", views.thread_watch, name="thread_watch"),
    path("forum/threads/<int:thread_id>/moderate/", views.thread_moderate, name="thread_moderate"),
    path("forum/threads/<int:thread_id>/move/", views.thread_move, name="thread_move"),
    path("forum/threads/<int:thread_id>/split/", views.thread_split, name="thread_split"),
    path("forum/posts/<int:post_id>/", views.post_detail, name="post_detail"),
    path("forum/posts/<int:post_id>/edit/", views.post_edit, name="post_edit"),
    path("forum/posts/<int:post_id>/history/", views.post_history, name="post_history"),
    path("forum/posts/<int:post_id>/like/", views.post_like, name="post_like"),
    path("forum/posts/<int:post_id>/accept/", views.post_accept, name="post_accept"),
    path("forum/posts/<int:post_id>/flag/", views.post_flag, name="post_flag"),
    path("forum/posts/<int:post_id>/moderate/", views.post_moderate, name="post_moderate"),
    path(
        "forum/ask/submissions/<int:submission_id>/",
        views.ask_about_submission,
        name="ask_submission",
    ),
    path("forum/notifications/", views.notification_list, name="notifications"),
    path("forum/notifications/count.json", views.notification_count, name="notification_count"),
    path("forum/notifications/read/", views.notifications_read_all, name="notifications_read_all"),
    path(
        "forum/notifications/<int:notification_id>/",
        views.notification_open,
        name="notification_open",
    ),
    path("forum/settings/", views.preferences, name="preferences"),
]
