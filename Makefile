# The two commands of the README: `make run` (main job on the embedded default) and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3
TORCH  ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: setup run test test-slow bench claims clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# Main job: the 2-D mixture GAN on ring8 (seconds on 2 cores), prints metrics and the plot's path.
run: setup
	$(VENV)/bin/latentlab train gan2d dataset=ring8

test: setup
	$(PY) -m pytest -q -n 2 --timeout 900 $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -q -m slow --timeout 3600 $(PYTEST_ARGS)

bench: setup
	$(PY) -m benchmarks.run all

# The lecture's claims with PASS / FAIL / NOT MEASURED verdicts, at the top of BENCHMARKS.md.
claims: setup
	$(PY) -m benchmarks.run claims
	$(PY) -m benchmarks.run --assemble

clean:
	rm -rf $(VENV) runs
