# Quorum: one image for the web server, the Celery workers and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    QUORUM_VAR_DIR=/app/var

# libgl1 and libglib2.0-0: OpenCV, which ultralytics imports.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 quorum

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
# Dependencies first, so that code changes do not reinstall torch.
RUN mkdir config boxes ops projects datasets groundtruth annotation transfer training serving demo \
    && pip install -c constraints.txt "torch==2.14.1" "torchvision==0.29.1" \
    && pip install -c constraints.txt .
COPY . .
RUN pip install --no-deps . \
    && DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && mkdir -p /app/var/media && chown -R quorum:quorum /app/var

# Each gunicorn worker (and each Celery pool process) writes its metrics there, and a scrape
# adds them up (config/gunicorn.py, ops/metrics.py); set after the build, so that the folder is
# made by the user who runs the service.
ENV PROMETHEUS_MULTIPROC_DIR=/tmp/quorum-metrics
USER quorum
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "-c", "config/gunicorn.py", "--bind", "0.0.0.0:8000", "--workers", "4", "--timeout", "120", "--access-logfile", "-"]
