# Two commands on a fresh machine (python3 + make): `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
EXTRAS ?= dev,s3,dagster-ui,compare
SIZE   ?= small
ROUNDS ?= 3
LEAF_REPEATS ?= 4

.PHONY: install demo test test-fast soak bench bench-compare clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $(STAMP)

install: $(STAMP)

demo: install  ## run the example pipeline on a local store and print a summary
	$(PY) examples/demo.py

test: install  ## the whole test suite (slow tests included)
	$(PY) -m pytest

test-fast: install  ## everything but the tests marked slow
	$(PY) -m pytest -m "not slow"

soak: install  ## full-size reliability figures (see docs/reliability.md)
	$(PY) benchmarks/soak.py

bench: install  ## every benchmark; SIZE=10M for the big runs
	$(PY) benchmarks/run_all.py --size $(SIZE)

bench-compare: install  ## 10M rows beside Metaxy 0.1.11, interleaved rounds (about 30 minutes)
	$(PY) benchmarks/store.py --sizes 10M --scenarios simple,wide --impls ours,metaxy \
		--metaxy-max 10M --no-bound --rounds $(ROUNDS) --leaf-repeats $(LEAF_REPEATS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
