"""Small request helpers shared by the apps' views."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


def safe_target(request: HttpRequest, target: str) -> str:
    """``target`` if it is a page of this site, else an empty string (no open redirects)."""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


def next_or(request: HttpRequest, fallback: str) -> str:
    """The page a form asked to go back to (its ``next`` field), if one of this site's; else
    ``fallback``."""
    return safe_target(request, request.POST.get("next", "")) or fallback
