# Two commands for a newcomer: `make demo` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Tests use as many workers as there are cores (2 on CI).
PYTEST_WORKERS ?= auto

.PHONY: install test test-all demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# torch first, pinned: the local CPU wheel. Anything later that needs torch then finds it installed.
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e ".[test,sim]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) -m "not slow"

test-all: $(STAMP)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS)

demo: $(STAMP)
	$(VENV)/bin/liv demo

clean:
	rm -rf $(VENV) build dist src/*.egg-info demo_out
