# The two commands: `make demo` and `make test`. Each builds .venv on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TORCH  ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test venv clean-venv

venv: $(STAMP)

# Rebuilt only when setup.py changes; otherwise `make test` starts at once.
# (STAMP_DEPS= : build only when missing, e.g. from a test already running inside .venv.)
STAMP_DEPS ?= setup.py
$(STAMP): $(STAMP_DEPS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[engine,gui,test,scipion]"
	$(PY) -m pip check
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m flexplugin.demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
