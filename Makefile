# Quorum's commands. `make run` and `make test` are the two a newcomer needs.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install install-gpu run test lint format worker beat bench migrate clean-var screenshots

install: $(INSTALLED)

$(INSTALLED): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch and torchvision first, exactly pinned: they install from this machine's disk.
	$(PY) -m pip install --quiet -c constraints.txt "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(INSTALLED)

# Development server, Celery worker and beat on the embedded defaults (SQLite and the
# filesystem broker under var/), with the demo accounts printed. DEBUG stays off (DJANGO_DEBUG=1
# turns it on for development); cookies go without the Secure flag, as the server speaks
# plain HTTP on the loopback. RUN_ARGS go to `manage.py rundev` (--addrport, --demo-images ...).
run: install
	DJANGO_SECURE_COOKIES=$${DJANGO_SECURE_COOKIES:-0} $(PY) manage.py rundev $(RUN_ARGS)

migrate: install
	$(PY) manage.py migrate

worker: install
	$(VENV)/bin/celery -A config worker -Q default,groundtruth,training,inference -l info

beat: install
	$(VENV)/bin/celery -A config beat -l info

# Serving on a GPU: ONNX Runtime's CUDA build replaces the CPU one (the two cannot live side
# by side). Training needs nothing more: torch's CUDA build is what `install` takes.
install-gpu: install
	$(PY) -m pip uninstall -y onnxruntime
	$(PY) -m pip install "onnxruntime-gpu==1.31.1"

# ruff, and the layering contract in pyproject.toml ([tool.importlinter]: each app imports
# only the layers below it, and no two modules of an app import each other).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The suite runs in PYTEST_WORKERS processes (pytest-xdist, one test file at a time each):
# most tests keep one core busy (pytest 1784 s in one process, 1176 to 1307 s in two here). Each has
# its own test database, Redis databases and var/ folder (tests/parallel.py).
PYTEST_WORKERS ?= 2

# Lint (ruff and the layers), migrations in step with the models, then the test suite. Uses DATABASE_URL and
# CELERY_BROKER_URL when they are set; REQUIRE_SERVICES=1 makes a missing service fail.
test: lint
	DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-make-test-secret} $(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest -p tests.parallel -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The README's screenshots, taken by the browser tests (docs/screenshots/, never committed).
screenshots: install
	QUORUM_SCREENSHOTS=docs/screenshots $(PY) -m pytest tests/browser -q \
		-k "draw_resize or settles_an_image or reads_the_agreement_report or trains_watches or try_page"

bench: install
	@missed=""; for script in bench/[!_]*.py; do echo "== $$script"; $(PY) $$script || missed="$$missed $$script"; done; \
	if [ -n "$$missed" ]; then echo "targets missed in:$$missed"; exit 1; fi

clean-var:
	rm -rf var/broker var/celerybeat-schedule* var/test-quorum.sqlite3
