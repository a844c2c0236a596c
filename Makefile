# The README's two commands are `make run` and `make test`; everything they need is installed here.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config.yaml

.PHONY: run test lint typecheck imports pytest bench stress fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed  ## start the service with config.yaml on SQLite
	$(BIN)/feedmill --config $(CONFIG) run

test: lint typecheck imports pytest  ## lint, types, import contracts and the test suite

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

imports: $(VENV)/.installed-test
	$(BIN)/lint-imports

pytest: $(VENV)/.installed-test
	$(BIN)/pytest

stress: $(VENV)/.installed-test  ## races run for hundreds of rounds (not part of `make test`)
	$(BIN)/pytest -m stress

fuzz: $(VENV)/.installed-test  ## the property-based tests with many more examples
	FEEDMILL_FUZZ=1 $(BIN)/pytest tests/app/test_hostile_property.py

bench: $(VENV)/.installed-test  ## benchmarks; figures go to BENCHMARKS.md by hand
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/store.py
	$(BIN)/python bench/poll.py
	$(BIN)/python bench/serve.py  # needs nginx and wrk: installs them with apt-get when root
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/story_ingest.py
	$(BIN)/python bench/story_serve.py
	$(BIN)/python bench/search.py --entries 100000 --ingest 20000
	$(BIN)/python bench/scale.py --sources 10000  # 50,000 and --database postgres: BENCHMARKS.md
	$(BIN)/python bench/cli.py  # --base REF: the same commands from that commit, in the same rounds

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
