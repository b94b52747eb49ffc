"""The site's URLs plus two bare views that measure the floor under the real pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def hello(request: HttpRequest) -> HttpResponse:
    # Through every middleware, but no session, database or template: the framework's floor.
    return HttpResponse("hello")


@login_required
def hello_user(request: HttpRequest) -> HttpResponse:
    # The floor for any logged-in page: the session (from the cache) and the user (one query).
    return HttpResponse(f"hello {request.user.get_username()}")


urlpatterns = [
    path("bench/hello", hello, name="bench_hello"),
    path("bench/hello-user", hello_user, name="bench_hello_user"),
    path("", include("topdown.urls")),
]
