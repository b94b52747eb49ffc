"""Topdown settings, read from the environment.

With nothing set, the embedded defaults give a working site: SQLite and a filesystem Celery
broker under ``var/``, DEBUG on. ``DATABASE_URL`` and ``REDIS_URL`` (or ``CELERY_BROKER_URL``)
switch to the real services. With DEBUG off, a default or missing secret key is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_secret(name: str, default: str = "") -> str:
    """``NAME``, or the content of the file ``NAME_FILE`` names (Docker and Compose secrets);
    setting both is refused, as the official images' entrypoints do."""
    path = os.environ.get(f"{name}_FILE", "")
    if not path:
        return os.environ.get(name, default)
    if os.environ.get(name):
        raise ImproperlyConfigured(f"Set {name} or {name}_FILE, not both.")
    try:
        return Path(path).read_text().strip()
    except OSError as error:
        raise ImproperlyConfigured(f"{name}_FILE={path}: {error.strerror}") from None


VAR_DIR = Path(os.environ.get("TOPDOWN_VAR_DIR", BASE_DIR / "var"))

DEBUG = env_bool("DEBUG", default=True)

DEFAULT_SECRET_KEY = "topdown-insecure-development-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = env_secret("SECRET_KEY", DEFAULT_SECRET_KEY)
if not DEBUG and (SECRET_KEY == DEFAULT_SECRET_KEY or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 32 characters when DEBUG is off."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "topdown",
    "accounts",
    "courses",
    "grader",
    "forum",
]

MIDDLEWARE = [
    "topdown.metrics.RequestLatencyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "topdown.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "topdown.urls"

TEMPLATES: list[dict[str, Any]] = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "courses.preview.context",
            ],
            # {% url %} reversing each distinct URL once per process (topdown/templatetags).
            "builtins": ["topdown.templatetags.cached_url"],
        },
    },
]
if not DEBUG:
    # Cached templates: parsing templates on every request costs more than rendering them.
    TEMPLATES[0]["APP_DIRS"] = False
    TEMPLATES[0]["OPTIONS"]["loaders"] = [
        (
            "django.template.loaders.cached.Loader",
            [
                "django.template.loaders.filesystem.Loader",
                "django.template.loaders.app_directories.Loader",
            ],
        )
    ]

WSGI_APPLICATION = "topdown.wsgi.application"
ASGI_APPLICATION = "topdown.asgi.application"

# Database: SQLite under var/ unless DATABASE_URL is set.
DATABASES = {
    "default": dj_database_url.parse(
        env_secret("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'topdown.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite keeps no connections worth reusing, and WAL lets the worker read while the web writes.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
else:
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
    if env_bool("DATABASE_PREPARED_STATEMENTS", default=True):
        # Parameters bound by the server, and a statement run five times on a connection is
        # kept prepared: PostgreSQL then skips parsing and planning it, half its CPU for the
        # pages' small indexed reads. Off behind a pooler that cannot keep them (PgBouncer in
        # transaction mode before 1.21, or without max_prepared_statements).
        DATABASES["default"]["OPTIONS"].update(server_side_binding=True, prepare_threshold=5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
# Django's model backend with the per-request user lookup compiled once (accounts/backends.py).
AUTHENTICATION_BACKENDS = ["accounts.backends.ModelBackend"]

# Cache: Redis when configured (shared by web processes and workers), local memory otherwise.
REDIS_URL = env_secret("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "topdown.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "topdown"),
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Sessions live in the database (the source of truth) and are read through the cache.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Outside var/ in the image: a volume over var/ would hide files collected at build time.
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# S3-compatible object storage (AWS S3, MinIO, Ceph, ...) when a bucket is named: uploads and
# datasets then reach workers on other machines through it. Hidden test labels go to their own
# bucket (or prefix) that no web server serves. Without a bucket: files under MEDIA_ROOT.
S3_BUCKET = os.environ.get("S3_BUCKET", "")
if S3_BUCKET:
    _s3_options = {
        "bucket_name": S3_BUCKET,
        "endpoint_url": os.environ.get("S3_ENDPOINT_URL") or None,
        "region_name": os.environ.get("S3_REGION") or None,
        "access_key": env_secret("S3_ACCESS_KEY_ID") or None,
        "secret_key": env_secret("S3_SECRET_ACCESS_KEY") or None,
        "default_acl": None,  # the bucket's policy decides; nothing is public by default
        "querystring_auth": True,  # links to private objects are signed and expire
        "file_overwrite": False,
    }
    STORAGES["default"] = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _s3_options}
    STORAGES["grader_hidden"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            **_s3_options,
            "bucket_name": os.environ.get("S3_HIDDEN_BUCKET") or S3_BUCKET,
            "location": "hidden",
        },
    }

# Email: printed to the console unless an SMTP server is configured.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Topdown <noreply@localhost>")

# Security headers. With DEBUG off, HTTPS everywhere is the default (not an opt-in to forget):
# the site runs behind a TLS-terminating proxy that sets X-Forwarded-Proto (docs/deployment.md).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Health checks and Prometheus scrape the container over plain HTTP on the internal network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", default=not DEBUG) else None
)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
# Content-Security-Policy, sent in every environment so the tests see what production sends
# (topdown.csp; docs/decisions.md).
CSP_REPORT_ONLY = env_bool("CSP_REPORT_ONLY", default=False)

# /metrics (topdown.metrics): a Prometheus scraper sends "Authorization: Bearer METRICS_TOKEN";
# staff users may look in a browser. Without a token only staff can.
METRICS_TOKEN = env_secret("METRICS_TOKEN")

# Celery: Redis when configured, otherwise kombu's filesystem transport under var/ (no server).
CELERY_BROKER_URL = env_secret("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# How long a worker heartbeat counts as "alive" on /healthz.
WORKER_HEARTBEAT_SECONDS = 10
WORKER_ALIVE_SECONDS = 30

# Grading. The sandbox backend: "auto" (bubblewrap where namespaces work), "bwrap" or "fallback".
# The fallback (no namespaces) is refused unless GRADER_ALLOW_DEGRADED is on (default: debug only).
GRADER_SANDBOX = os.environ.get("GRADER_SANDBOX", "auto")
GRADER_ALLOW_DEGRADED = env_bool("GRADER_ALLOW_DEGRADED", default=DEBUG)
GRADER_JOBS_DIR = os.environ.get("GRADER_JOBS_DIR", "")
GRADER_CACHE_DIR = os.environ.get("GRADER_CACHE_DIR", str(VAR_DIR / "grader-cache"))
# A run's lease: the worker renews it about every second, so 30 s rides out a database restart
# while a killed worker's run is queued again within a lease and a reaper period (decisions.md).
GRADER_LEASE_SECONDS = int(os.environ.get("GRADER_LEASE_SECONDS", "30"))
GRADER_MAX_INFRASTRUCTURE_RETRIES = int(os.environ.get("GRADER_MAX_INFRASTRUCTURE_RETRIES", "3"))
# How often beat runs the reaper (re-queues runs whose lease expired) and the reconciler
# (re-enqueues queued runs the broker may have lost), in seconds; faults.py may shorten them.
GRADER_REAP_SECONDS = float(os.environ.get("GRADER_REAP_SECONDS", "10"))
GRADER_RECONCILE_SECONDS = float(os.environ.get("GRADER_RECONCILE_SECONDS", "60"))

# Caps on what students can post.
ANSWER_TEXT_MAX_LENGTH = 5000

# Forum. Accounts younger than FORUM_NEW_ACCOUNT_DAYS are rate limited (staff never are).
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")  # links in emails
FORUM_POST_MAX_CHARS = int(os.environ.get("FORUM_POST_MAX_CHARS", "20000"))
FORUM_NEW_ACCOUNT_DAYS = int(os.environ.get("FORUM_NEW_ACCOUNT_DAYS", "3"))
FORUM_NEW_ACCOUNT_POSTS_PER_MINUTE = int(os.environ.get("FORUM_NEW_ACCOUNT_POSTS_PER_MINUTE", "2"))
FORUM_NEW_ACCOUNT_LINKS_PER_POST = int(os.environ.get("FORUM_NEW_ACCOUNT_LINKS_PER_POST", "2"))
FORUM_POSTS_PER_MINUTE = int(os.environ.get("FORUM_POSTS_PER_MINUTE", "10"))

TOPDOWN_VERSION = "0.1.0"

# LOG_FORMAT=json: one JSON object a line (for a log collector). Either way, a line logged while
# a run is graded carries its submission_id or baseline_run_id (topdown.logs).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "topdown.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
        "json": {"()": "topdown.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
