# youthhub: `make run` serves the demo on the embedded default; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test test-services test-embedded install install-test lint clean

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

lint: install-test
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var staticfiles test-artifacts
