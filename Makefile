# youthhub: `make run` serves the demo on the embedded default; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test test-services test-embedded install install-test lint messages clean bench

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(PY) -m youthhub demo --port $(PORT)

# The whole suite on PostgreSQL + Redis (+ Chromium), then the chat tests again on the
# embedded default (SQLite + in-memory channel layer).
test: install-test lint test-services test-embedded

test-services: install-test
	YOUTHHUB_TEST_BACKEND=services $(PY) -m pytest

test-embedded: install-test
	YOUTHHUB_TEST_BACKEND=embedded $(PY) -m pytest -m "not services and not browser"

# Load benchmark (not part of `make test`; ~15 minutes): youthhub with 1 and 2 workers
# (deploy/cluster) against a bare Channels relay on the same Redis, both channel layers.
# Results: var/bench/latest.json and a Markdown table; docs/benchmarks.md. BENCH_ARGS passes
# options, e.g. make bench BENCH_ARGS="--workers 1 --steps 25,50".
$(VENV)/.installed-bench: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $(VENV)/.installed $@

bench: $(VENV)/.installed-bench
	$(PY) -m deploy.bench $(BENCH_ARGS)

# Translations: collect every msgid (English) into frontend/locale/{nb,en}/LC_MESSAGES/django.po,
# then compile the .mo files (committed, so a checkout works without gettext). Needs GNU gettext
# (xgettext, msgmerge, msgfmt). Translate new entries in nb's django.po, then run this again.
MESSAGES_IGNORE := --ignore=.venv --ignore=staticfiles --ignore=var --ignore=build --ignore=test-artifacts
messages: install
	$(PY) manage.py makemessages -l nb -l en --no-obsolete --add-location=file $(MESSAGES_IGNORE)
	$(PY) manage.py compilemessages $(MESSAGES_IGNORE)

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) var staticfiles test-artifacts
