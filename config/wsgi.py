"""WSGI entry point (gunicorn config.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from config.allocator import allocator_tune

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
allocator_tune()  # predictions allocate megabytes per request: see config/allocator.py

application = get_wsgi_application()
