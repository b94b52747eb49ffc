"""The Content-Security-Policy header, on every response in every environment.

Django 5.2 has none built in and the policy is a fixed string plus a nonce, so a few lines
replace a dependency. Pages load scripts and styles only from our own static files (KaTeX,
CodeMirror and htmx are vendored). Two allowances, recorded in docs/decisions.md:

- ``style-src`` carries a per-response nonce (``request.csp_nonce``): CodeMirror 6 puts its
  styles in a ``<style>`` element, which it marks with the nonce the page hands it
  (``EditorView.cspNonce``). Scripts get no nonce: every script is a static file.
- ``style-src-attr 'unsafe-inline'``: KaTeX sets ``style`` attributes on the spans and SVGs it
  draws (sizes and offsets of every symbol), and progress bars carry their width the same way.

``settings.CSP_POLICY`` (a dict of directives) overrides the policy; ``settings.CSP_REPORT_ONLY``
sends it as ``Content-Security-Policy-Report-Only`` (for trying a change, never the default). A
view that sets its own header keeps it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

NONCE = "{nonce}"

DEFAULT_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": f"'self' 'nonce-{NONCE}'",
    "style-src-attr": "'unsafe-inline'",
    "img-src": "'self' data:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def policy_header_value(policy: dict[str, str] | None = None, *, nonce: str = "") -> str:
    directives = policy if policy is not None else DEFAULT_POLICY
    value = "; ".join(f"{name} {source}" for name, source in directives.items())
    return value.replace(f" 'nonce-{NONCE}'", f" 'nonce-{nonce}'" if nonce else "")


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.header = (
            "Content-Security-Policy-Report-Only"
            if getattr(settings, "CSP_REPORT_ONLY", False)
            else "Content-Security-Policy"
        )
        self.policy = getattr(settings, "CSP_POLICY", None)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(18)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        if "Content-Security-Policy" not in response and self.header not in response:
            response[self.header] = policy_header_value(self.policy, nonce=nonce)
        return response
