# Two commands do everything on a fresh machine:
#   make demo   set up, fetch the offline assets, run the embedded default experiment
#   make test   set up, fetch the assets the tests read, run the test suite
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.fedrai-installed
TORCH   ?= torch==2.13.0
TEST_ASSETS := minilm-l6-v2 instructlab harmful-pairs advbench refusal-evals objective-evals harmbench strongreject mtbench

.PHONY: setup demo test test-fast bench lint clean

# torch first: a bare `torch` pulled in by another package would fetch a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/fedrai demo $(ARGS)   # fetches the assets the demo names (not the 358 MB HHH archive)

test: $(STAMP)
	$(BIN)/fedrai assets fetch $(TEST_ASSETS)
	$(BIN)/python -m pytest -q $(ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" $(ARGS)

bench: $(STAMP)
	$(BIN)/fedrai assets fetch
	$(BIN)/python -m benchmarks.run $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check fedrai tests benchmarks
	$(BIN)/ruff format --check fedrai tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
