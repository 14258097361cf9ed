# One image per site, from this one file:
#   docker build --build-arg SITE=liveblog -t realtime-liveblog .
# docker-compose.yml builds all three.

# The virtualenv is built in its own stage, so pip and setuptools stay out of the image.
FROM python:3.11-slim-bookworm AS venv
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Dependencies first: this layer is rebuilt only when the pins change.
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv && /opt/venv/bin/pip install -r /tmp/requirements.txt
COPY shared /tmp/shared
RUN /opt/venv/bin/pip install --no-deps /tmp/shared && /opt/venv/bin/pip uninstall --yes pip setuptools

FROM python:3.11-slim-bookworm

ARG SITE
RUN test -n "$SITE" || (echo "Build with --build-arg SITE=liveblog|chat|sketchpad" >&2; exit 1)

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=config.settings \
    FRONTEND_DIR=/app/frontend \
    DJANGO_STATIC_ROOT=/app/staticfiles \
    DJANGO_DATABASE_PATH=/data/db.sqlite3
# The database is DATABASE_URL's (docker-compose.yml: Postgres); without one, the SQLite
# file above: mount a volume on /data to keep it (docker run -v liveblog-data:/data ...).

COPY --from=venv /opt/venv /opt/venv
COPY frontend/js /app/frontend/js
COPY frontend/css /app/frontend/css
COPY frontend/vendor /app/frontend/vendor
COPY ${SITE} /app/site
COPY docker/start /usr/local/bin/start
WORKDIR /app/site
# Static files are collected into the image; WhiteNoise serves them, compressed and cache-busted.
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input -v 0 \
    && useradd --system --uid 10001 --no-create-home app \
    && mkdir /data && chown app /data

USER app
EXPOSE 8000
CMD ["start"]
