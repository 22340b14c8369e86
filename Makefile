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

# calls/s and CPU per 1,000 calls (stateless and stateful proxy, registrar), sipserver
# then Kamailio, with ../shared/bench (minutes per scenario; figures move +-20 % between
# runs). One scenario: make bench-sip SCENARIOS=stateful
SCENARIOS ?= stateless stateful registrar
bench-sip: $(STAMP)
	bash scripts/bench-deps.sh
	for s in $(SCENARIOS); do \
	    PATH=$(CURDIR)/$(VENV)/bin:$$PATH ../shared/bench/run-sip-bench sipserver $$s --outdir bench/out/sipserver-$$s; \
	    ../shared/bench/run-sip-bench kamailio $$s --outdir bench/out/kamailio-$$s; \
	done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
