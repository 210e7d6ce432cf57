# lsandbox: the two commands the README opens with are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup system-deps speedups generate demo test test-fast test-kernels lint bench clean

system-deps:
	./scripts/install-system-deps.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	touch $(STAMP)

# The FFI modules (cffi's pre-parsed declarations, committed, and the broker's C fast path,
# built) and bytecode (PYTHONDONTWRITEBYTECODE may be set).
speedups: $(STAMP)
	$(BIN)/python scripts/generate.py --ffi
	$(BIN)/python -m compileall -q lsandbox lsandbox_records seccomp_bpf landlock macos

setup: system-deps $(STAMP) speedups

# Every committed generated module (syscall tables, precompiled filters, cffi declarations)
# from its source, then the fast path; a unit test checks the committed ones are up to date.
generate: $(STAMP)
	$(BIN)/python scripts/generate.py

demo: setup
	./scripts/demo.sh

# mypy with no arguments checks the packages listed in pyproject.toml's [tool.mypy].
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

test: setup lint
	LSANDBOX_EXPECT_FASTPATH=1 $(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -x -q tests/unit

# The kernel and security suites on real Debian kernels under qemu (see README, "Test boxes").
KERNELS ?= 5.10 6.1 6.12 6.18 7.3
JOBS ?= 1
test-kernels: setup
	./scripts/install-system-deps.sh --kernels
	python3 scripts/test_kernels.py --jobs $(JOBS) $(KERNELS)

bench: setup
	./scripts/install-system-deps.sh --bench
	mkdir -p .bench && cd .bench && (npm install --silent --no-audit --no-fund @anthropic-ai/sandbox-runtime@0.0.83 || echo "sandbox-runtime not installed: its column is skipped")
	cd .bench && (npm install --silent --no-audit --no-fund @openai/codex@0.171.0 || echo "codex not installed: its column is skipped")
	$(BIN)/python -m pytest -m bench -s -q -p no:randomly tests/bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
