# syntax=docker/dockerfile:1
# Topdown's web and CPU worker images (docs/deployment.md). Two targets from one base:
#   docker build --target web    -t topdown-web .     gunicorn, static files collected at build
#   docker build --target worker -t topdown-worker .  Celery worker with the grading libraries
# The GPU worker is Dockerfile.gpu.

FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=topdown.settings \
    TOPDOWN_VAR_DIR=/data/var \
    MEDIA_ROOT=/data/media \
    STATIC_ROOT=/app/staticfiles
# bubblewrap is the sandbox; prlimit and setpriv (util-linux, already in the image) complete it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 topdown \
    && useradd --system --uid 10001 --gid topdown --home-dir /app --shell /usr/sbin/nologin topdown \
    && mkdir -p /data/var /data/media \
    && chown topdown:topdown /data/var /data/media
WORKDIR /app

FROM base AS web
COPY requirements/base.txt requirements/base.txt
RUN python -m venv /opt/venv && pip install -r requirements/base.txt
COPY . .
# A throwaway key: collectstatic needs settings that load with DEBUG off, nothing more.
RUN DEBUG=0 SECRET_KEY=collectstatic-at-build-time-not-a-secret-0123456789 \
    python manage.py collectstatic --noinput \
    && python -m compileall -q /app
USER topdown
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "deploy/healthcheck.py", "web"]
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "topdown.wsgi:application"]

FROM base AS worker
COPY requirements/base.txt requirements/worker.txt requirements/
RUN python -m venv /opt/venv && pip install -r requirements/worker.txt
COPY . .
RUN python -m compileall -q /app
# The worker runs as root inside its container, on purpose: root's bubblewrap gives every job a
# uid of its own (docs/decisions.md, "Each sandboxed job runs as a uid of its own"), and the
# entrypoint delegates a cgroup for the jobs' memory and process caps. Its capabilities are cut
# down to what that needs in docker-compose.yml. Beat uses this image too, as user topdown.
ENTRYPOINT ["deploy/worker-entrypoint.sh"]
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "deploy/healthcheck.py", "worker"]
CMD ["celery", "-A", "topdown", "worker", "--queues", "cpu,default", "--concurrency", "2", \
     "--hostname", "cpu@%h", "--loglevel", "INFO", "--without-mingle", "--without-gossip"]
