"""The site's URLs plus ``/bench/hello``, the cheapest response Django gives through its stack."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def hello(request: HttpRequest) -> HttpResponse:
    # Through every middleware, but no session, database or template: the framework's floor.
    return HttpResponse("hello")


urlpatterns = [
    path("bench/hello", hello, name="bench_hello"),
    path("", include("topdown.urls")),
]
