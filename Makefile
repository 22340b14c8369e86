# sipserver — two entry points on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench venv clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/sipserver -f opensips.cfg.example -F -E

lint: $(STAMP)
	$(VENV)/bin/ruff check sipserver tests bench

test: $(STAMP)
	bash scripts/test-deps.sh
	$(VENV)/bin/ruff check sipserver tests bench
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) bench/parse.py
	$(PY) bench/script.py
	$(PY) bench/shm.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
