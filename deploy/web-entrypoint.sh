#!/bin/sh
# The web container's entrypoint: apply the migrations first when MIGRATE_ON_START=1 (one web
# container does it; the workers and beat wait for the web service to be healthy).
set -eu
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"  # gunicorn.conf.py empties it when gunicorn starts
fi
if [ "${MIGRATE_ON_START:-0}" = 1 ]; then
    python manage.py migrate --noinput
fi
exec "$@"
