# sipserver — two entry points on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench bench-sip venv clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	VENV=$(VENV) bash scripts/run-example.sh

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
	$(PY) bench/tm.py
	$(PY) bench/usrloc.py

# calls/s and CPU per 1,000 calls through the stateless proxy, sipserver then
# Kamailio, with ../shared/bench (several minutes; figures move +-20 % between runs)
bench-sip: $(STAMP)
	bash scripts/bench-deps.sh
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH ../shared/bench/run-sip-bench sipserver stateless --outdir bench/out/sipserver
	../shared/bench/run-sip-bench kamailio stateless --outdir bench/out/kamailio

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
