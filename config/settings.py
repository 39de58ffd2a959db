"""Quorum settings: one module, driven by environment variables, with defaults that need no server."""

import os
import secrets
import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# Everything Quorum writes at run time on the embedded defaults lives here.
VAR_DIR = Path(env.str("QUORUM_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DJANGO_DEBUG", default=False)

# The embedded default: no DATABASE_URL, so SQLite under var/ on one machine (`make run`).
EMBEDDED = not env.str("DATABASE_URL", default="")

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not (DEBUG or EMBEDDED):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random string; only the embedded default "
            "(no DATABASE_URL) and DJANGO_DEBUG=1 keep a generated key under var/."
        )
    # One machine: a key generated once and kept under var/ (mode 0600). A fresh key per
    # process would log everyone out at every restart and break signatures between the web
    # server and the workers.
    _key_file = VAR_DIR / "secret_key"
    if _key_file.exists():
        SECRET_KEY = _key_file.read_text().strip()
    else:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        SECRET_KEY = secrets.token_urlsafe(50)
        _key_file.touch(mode=0o600)
        _key_file.write_text(SECRET_KEY)
    if DEBUG and not EMBEDDED:
        print(
            f"Warning: DJANGO_SECRET_KEY is not set; using the development key in {_key_file}. "
            "Never run like this in production.",
            file=sys.stderr,
        )

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# --- Ultralytics without the internet -------------------------------------------------
# Every Quorum process (web, worker, beat, management commands) loads this module before
# anything can import ultralytics, which reads these variables once, at import time.
YOLO_CONFIG_DIR = VAR_DIR / "ultralytics"
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "False"
os.environ.setdefault("YOLO_CONFIG_DIR", str(YOLO_CONFIG_DIR))

# --- Applications ---------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Quorum's apps, lowest layer first (DESIGN.md; the import contract in pyproject.toml)
    "ops",
    "projects",
    "datasets",
    "groundtruth",
    "annotation",
    "transfer",
    "training",
    "serving",
    "demo",
]

MIDDLEWARE = [
    # first, so that it times every answer (ops/metrics.py)
    "ops.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    "config.middleware.PathIdBoundsMiddleware",
    "config.middleware.NoStoreMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'quorum.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a Celery worker started by the tests sees the test rows.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-quorum.sqlite3")}
    # Several writers at once (a team on `make run`, the worker, beat), as SQLite's own guidance
    # has it: write-ahead logging, so readers never wait for the writer; transactions that take
    # the write lock when they begin (IMMEDIATE), so that two of them never both read and then
    # both try to write, which SQLite answers at once with "database is locked" instead of
    # waiting; and a busy timeout, so a writer waits its turn (seconds) instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": env.float("QUORUM_SQLITE_BUSY_SECONDS", default=30.0),
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Internationalisation -------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media files -----------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("QUORUM_MEDIA_ROOT", default=str(VAR_DIR / "media")))

# Media on an S3 API (AWS, MinIO, Ceph, ...) when a bucket is named. Credentials from
# AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else wherever boto3 finds them (a role, ...).
# Browsers fetch images straight from the bucket through presigned URLs that live
# QUORUM_S3_URL_SECONDS (config/media.py), as <img> loads: the bucket needs no CORS rule.
AWS_STORAGE_BUCKET_NAME = env.str("QUORUM_S3_BUCKET", default="")
QUORUM_S3_URL_SECONDS = env.int("QUORUM_S3_URL_SECONDS", default=300)
if AWS_STORAGE_BUCKET_NAME:
    _media_storage = {
        "BACKEND": "config.media.S3MediaStorage",  # django-storages' S3Storage, one PUT a file
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("QUORUM_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("QUORUM_S3_REGION", default="") or None,
            # unset: boto3's other sources (a profile, an instance or pod role)
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            # a key prefix inside the bucket, for a bucket shared with other things
            "location": env.str("QUORUM_S3_LOCATION", default=""),
            "addressing_style": env.str("QUORUM_S3_ADDRESSING_STYLE", default="") or None,
            "signature_version": "s3v4",
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": QUORUM_S3_URL_SECONDS,
            "file_overwrite": False,
        },
    }
else:
    _media_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _media_storage,
    "staticfiles": {
        # The manifest storage needs `collectstatic` first; a development server and the
        # tests serve the files from the source folders instead.
        "BACKEND": (
            "config.staticfiles.ModuleManifestStaticFilesStorage"
            if env.bool("QUORUM_STATIC_MANIFEST", default=not DEBUG)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Without the manifest, WhiteNoise serves straight from the source folders.
WHITENOISE_USE_FINDERS = STORAGES["staticfiles"]["BACKEND"].startswith("django.")

# --- Upload limits ----------------------------------------------------------------------
# Image uploads stream to temporary files; these cap what is held in memory and how many
# fields one request may carry. The per-image pixel cap lives with image ingestion.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("QUORUM_MAX_REQUEST_BODY_BYTES", default=10 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 5000
DATA_UPLOAD_MAX_NUMBER_FILES = env.int("QUORUM_MAX_FILES_PER_REQUEST", default=500)
FILE_UPLOAD_PERMISSIONS = 0o640
QUORUM_MAX_UPLOAD_BYTES = env.int("QUORUM_MAX_UPLOAD_BYTES", default=2 * 1024 * 1024 * 1024)
# One image: bytes on the wire, and pixels (checked before decoding, against decompression bombs).
QUORUM_MAX_IMAGE_BYTES = env.int("QUORUM_MAX_IMAGE_BYTES", default=50 * 1024 * 1024)
QUORUM_MAX_IMAGE_PIXELS = env.int("QUORUM_MAX_IMAGE_PIXELS", default=50_000_000)
# Import files (COCO / Label Studio JSON, YOLO / VOC archives of text).
QUORUM_MAX_IMPORT_BYTES = env.int("QUORUM_MAX_IMPORT_BYTES", default=200 * 1024 * 1024)
# The largest base weights file a project admin may upload (safetensors).
QUORUM_MAX_BASE_WEIGHTS_BYTES = env.int("QUORUM_MAX_BASE_WEIGHTS_BYTES", default=512 * 1024 * 1024)
# Threads that decode and re-encode the images of one upload batch at once.
QUORUM_INGEST_THREADS = env.int("QUORUM_INGEST_THREADS", default=min(4, os.cpu_count() or 1))
# Zip uploads: entries, and bytes once uncompressed (against zip bombs).
QUORUM_ZIP_MAX_ENTRIES = env.int("QUORUM_ZIP_MAX_ENTRIES", default=20_000)
QUORUM_ZIP_MAX_TOTAL_BYTES = env.int("QUORUM_ZIP_MAX_TOTAL_BYTES", default=20 * 1024 * 1024 * 1024)

# --- Training -----------------------------------------------------------------------------
# Where a training worker keeps each run's working folder (dataset copy, last.pt, logs);
# local to the worker, so that a retried run resumes from its own last.pt.
QUORUM_TRAINING_DIR = Path(env.str("QUORUM_TRAINING_DIR", default=str(VAR_DIR / "training")))
# A running run's worker writes a heartbeat this often; the reaper settles a run whose
# heartbeat is older than the stale age, retrying it up to the attempts limit.
QUORUM_TRAINING_HEARTBEAT_SECONDS = env.float("QUORUM_TRAINING_HEARTBEAT_SECONDS", default=5.0)
QUORUM_TRAINING_STALE_SECONDS = env.float("QUORUM_TRAINING_STALE_SECONDS", default=120.0)
QUORUM_TRAINING_MAX_ATTEMPTS = env.int("QUORUM_TRAINING_MAX_ATTEMPTS", default=3)
QUORUM_TRAINING_LOG_TAIL_LINES = 60
# Up to this many train images are predicted to compare train and val AP (overfitting flag).
QUORUM_TRAINING_EVAL_TRAIN_IMAGES = env.int("QUORUM_TRAINING_EVAL_TRAIN_IMAGES", default=200)
# Train images of a model's snapshot that an int8 deployment target's quantization is
# calibrated on (never val or test images); at least 100 where the snapshot has them.
QUORUM_TARGET_CALIBRATION_IMAGES = env.int("QUORUM_TARGET_CALIBRATION_IMAGES", default=100)
# Scheduled retraining: how often the beat task looks (seconds; a week by default).
QUORUM_RETRAIN_EVERY_SECONDS = env.float("QUORUM_RETRAIN_EVERY_SECONDS", default=7 * 24 * 3600.0)

# --- Serving ------------------------------------------------------------------------------
# Model files copied from storage for ONNX Runtime, by sha256.
QUORUM_MODEL_CACHE_DIR = Path(env.str("QUORUM_MODEL_CACHE_DIR", default=str(VAR_DIR / "model-cache")))
# ONNX Runtime's threads per loaded model (0: its default, one per core). A session answers
# several predictions at once (no lock): intra-op threads split one image's work, inter-op
# threads run independent branches of the graph. bench/serving.py measures the choice.
QUORUM_ONNX_INTRA_OP_THREADS = env.int("QUORUM_ONNX_INTRA_OP_THREADS", default=0)
QUORUM_ONNX_INTER_OP_THREADS = env.int("QUORUM_ONNX_INTER_OP_THREADS", default=0)
# Shadow runs wait for the answer's thread pool (one thread per process) after their answers;
# beyond this many waiting, a new one is dropped (serving/shadows.py).
QUORUM_SHADOW_QUEUE = env.int("QUORUM_SHADOW_QUEUE", default=16)
# Prediction log rows are written by a background thread in batches (off the answer's path).
QUORUM_PREDICTION_LOG_DEFERRED = env.bool("QUORUM_PREDICTION_LOG_DEFERRED", default=True)
QUORUM_PREDICTION_LOG_DAYS = env.int("QUORUM_PREDICTION_LOG_DAYS", default=30)
# One prediction request: the image's bytes (multipart) and pixels.
QUORUM_PREDICT_MAX_BYTES = env.int("QUORUM_PREDICT_MAX_BYTES", default=20 * 1024 * 1024)
# An upload answered with a mean confidence under this (or with no box) is kept in storage,
# so that a reviewer can send it to the annotators; 0 keeps none.
QUORUM_SERVING_KEEP_BELOW = env.float("QUORUM_SERVING_KEEP_BELOW", default=0.5)
# Drift: the hourly report compares the last window of answers with the model's profile.
QUORUM_DRIFT_WINDOW_HOURS = env.float("QUORUM_DRIFT_WINDOW_HOURS", default=24.0)
QUORUM_DRIFT_MIN_PREDICTIONS = env.int("QUORUM_DRIFT_MIN_PREDICTIONS", default=30)
QUORUM_DRIFT_PSI_ALERT = env.float("QUORUM_DRIFT_PSI_ALERT", default=0.25)
QUORUM_DRIFT_EMAIL = env.bool("QUORUM_DRIFT_EMAIL", default=False)  # alerts to ADMINS by Django's mail backend

# --- Security ---------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0)
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)

# --- REST framework -----------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first, so that an anonymous API call answers 401 with WWW-Authenticate.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "projects.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    # JSON nested deeper than any body needs is refused (400) before it is parsed.
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # `?format=` names an export format (coco, yolo, voc), not a DRF renderer.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_PAGINATION_CLASS": "config.pagination.Pagination",
    "PAGE_SIZE": 100,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Quorum API",
    "DESCRIPTION": "Annotation panels, consensus ground truth, training and serving for pedestrian detection.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.api_docs.error_responses"],
}

# --- Celery -------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport, with each message written whole before a consumer sees it
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        # The filesystem transport polls; once a second is slow for a development machine.
        "polling_interval": 0.1,
    }
    # kombu's filesystem transport does not create its folders.
    for _folder in ("queue", "control", "processed"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than the longest task (training), so that an unacknowledged long task
        # is not redelivered to a second worker while the first still runs it.
        "visibility_timeout": 8 * 3600 + 600,
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [
    Queue("default"),
    Queue("groundtruth"),
    Queue("training"),
    Queue("inference"),
]
# Tasks are routed by the app that owns them; a task may still name its queue explicitly.
CELERY_TASK_ROUTES = {
    "groundtruth.tasks.*": {"queue": "groundtruth"},
    # Bookkeeping of training runs must not wait behind a long training on its queue.
    "training.tasks.training_runs_reap_task": {"queue": "default"},
    "training.tasks.training_runs_schedule_task": {"queue": "default"},
    "training.tasks.*": {"queue": "training"},
    "serving.tasks.drift_reports_compute_task": {"queue": "default"},
    "serving.tasks.prediction_logs_prune_task": {"queue": "default"},
    "serving.tasks.*": {"queue": "inference"},
    "datasets.tasks.*": {"queue": "default"},
    "annotation.tasks.*": {"queue": "default"},
    "ops.tasks.*": {"queue": "default"},
}
# Per-queue time limits in seconds (soft, hard), applied by config.celery to the
# tasks routed to each queue.
CELERY_QUEUE_TIME_LIMITS = {
    "default": (300, 360),
    "groundtruth": (900, 960),
    "training": (8 * 3600, 8 * 3600 + 300),
    "inference": (900, 960),
}
CELERY_TASK_ANNOTATIONS = ["config.celery.QueueTimeLimits"]
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The one place where periodic work is scheduled.
CELERY_BEAT_SCHEDULE = {
    # A heartbeat through each queue tells an admin which queues have a live consumer.
    **{
        f"worker-heartbeat-{queue.name}": {
            "task": "ops.tasks.worker_heartbeat_task",
            "schedule": 60.0,
            "options": {"queue": queue.name, "expires": 55},
        }
        for queue in CELERY_TASK_QUEUES
    },
    "prune-heartbeats": {
        "task": "ops.tasks.heartbeat_prune_task",
        "schedule": 3600.0,
    },
    "image-thumbnails-sweep": {
        "task": "datasets.tasks.image_thumbnails_sweep_task",
        "schedule": 600.0,
    },
    "assignment-leases-expire": {
        "task": "annotation.tasks.assignment_leases_expire_task",
        "schedule": 60.0,
    },
    "image-orphans-delete": {
        "task": "datasets.tasks.image_orphans_delete_task",
        "schedule": 3600.0,
    },
    "consensus-versions-sweep": {
        "task": "groundtruth.tasks.consensus_versions_sweep_task",
        "schedule": 600.0,
    },
    # image updates lost while the broker was down (the submissions themselves are saved)
    "images-consensus-sweep": {
        "task": "groundtruth.tasks.images_consensus_sweep_task",
        "schedule": 300.0,
    },
    "training-runs-reap": {
        "task": "training.tasks.training_runs_reap_task",
        "schedule": 60.0,
    },
    "drift-reports": {
        "task": "serving.tasks.drift_reports_compute_task",
        "schedule": 3600.0,
    },
    "prediction-logs-prune": {
        "task": "serving.tasks.prediction_logs_prune_task",
        "schedule": 24 * 3600.0,
    },
    "retraining-schedule": {
        "task": "training.tasks.training_runs_schedule_task",
        "schedule": QUORUM_RETRAIN_EVERY_SECONDS,
    },
}

# API clients' rate limits are counted in this cache: shared by every web process when it
# is Redis (QUORUM_CACHE_URL, a Redis database of its own: a cache may be cleared, the
# broker's database must not be), per process otherwise.
_cache_url = env.str("QUORUM_CACHE_URL", default="")
CACHES = {
    "default": (
        {"BACKEND": "config.cache.ReusedClientRedisCache", "LOCATION": _cache_url}
        if _cache_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Seconds a process keeps API clients, routing rules and champions between predictions;
# only with a shared cache, which carries the token that invalidates them (serving/state.py).
QUORUM_SERVING_STATE_SECONDS = env.float("QUORUM_SERVING_STATE_SECONDS", default=30.0 if _cache_url else 0.0)

# The sweep sends again an image's consensus update this long after its last submission
# (the update is normally sent at once; this catches the ones lost while the broker was down).
QUORUM_CONSENSUS_SWEEP_AFTER_SECONDS = env.float("QUORUM_CONSENSUS_SWEEP_AFTER_SECONDS", default=120.0)
# A consensus version is computed in chunks of this many images, one task each on the
# groundtruth queue, so that every groundtruth worker helps and memory stays flat.
QUORUM_CONSENSUS_CHUNK_IMAGES = env.int("QUORUM_CONSENSUS_CHUNK_IMAGES", default=2000)
# A reliability-weighted version estimates the annotators' rates once, by EM over at most
# this many complete images (a seeded sample, every gold image in it).
QUORUM_CONSENSUS_RELIABILITY_SAMPLE = env.int("QUORUM_CONSENSUS_RELIABILITY_SAMPLE", default=5000)

# --- Health checks ------------------------------------------------------------------------
HEALTHZ_BROKER_TIMEOUT_SECONDS = env.float("QUORUM_HEALTHZ_BROKER_TIMEOUT", default=2.0)

# --- Metrics (Prometheus) -------------------------------------------------------------------
# /metrics answers only `Authorization: Bearer <this>`; empty: the endpoint is off (404).
QUORUM_METRICS_TOKEN = env.str("QUORUM_METRICS_TOKEN", default="")
# prometheus_client's multiprocess mode (gunicorn's workers, Celery's pool): each process writes
# its counters here and a scrape adds them up. prometheus_client reads the variable itself when
# imported; set it in the shell that starts the service (its docs), one folder per service.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
# A Celery worker serves its task metrics on this port at /metrics, behind the same token (0: off).
QUORUM_WORKER_METRICS_PORT = env.int("QUORUM_WORKER_METRICS_PORT", default=0)

# --- Logging ----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("QUORUM_LOG_LEVEL", default="INFO")},
}
