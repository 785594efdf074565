# sigkit: `make study` runs the whole study on the synthetic cohort;
# `make test` sets everything up and runs the tests; `make validate` runs the
# Python-vs-R cross-check suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.sigkit-installed
export KERAS_BACKEND := jax
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.jax_cache
export PYTHONHASHSEED := 0

.PHONY: setup system-deps test validate study bench lint clean

setup: $(STAMP)

system-deps:
	@bash scripts/install_system_deps.sh

$(STAMP): pyproject.toml | system-deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# pymrmr (dev extra) ships only an sdist whose setup.py imports Cython and numpy, so
	@# it builds without isolation, with the venv's own build tools: setuptools and wheel
	@# (bdist_wheel) must be installed here, or a fresh machine fails where a cached wheel hid it.
	$(PY) -m pip install -q 'setuptools>=68' 'wheel>=0.41' 'Cython>=3,<4' 'numpy>=1.26,<3'
	$(PY) -m pip install -q --no-build-isolation 'pymrmr>=0.1.11,<0.2'
	$(PY) -m pip install -q -e '.[dev,torch]'
	@touch $(STAMP)

test: system-deps $(STAMP)
	$(PY) -m pytest -q

validate: system-deps $(STAMP)
	$(VENV)/bin/sigkit validate

study: system-deps $(STAMP)
	$(VENV)/bin/sigkit study demo --dir runs/demo

# Each run's JSON lands in benchmarks/results/ (read by the validation report); the README's
# measured tables are then rewritten from every JSON there.
BENCH_JSON ?= benchmarks/results/$(shell date -u +%Y%m%dT%H%M)_$(shell hostname -s).json

bench: system-deps $(STAMP)
	@mkdir -p benchmarks/results
	$(PY) -m pytest benchmarks -q --benchmark-only --benchmark-columns=median,iqr,rounds \
		--benchmark-json=$(BENCH_JSON)
	$(PY) benchmarks/write_readme.py

lint: $(STAMP)
	$(VENV)/bin/ruff check toolkit tests validation benchmarks
	$(VENV)/bin/ruff format --check toolkit tests validation benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .benchmarks
