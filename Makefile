# Everything runs inside .venv, created from nothing by the first target that needs it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint dev bench chaos clean lambda-lock

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# ruff (lint and format check) and mypy on the runtime, the CDK app and the benchmarks. mypy reads
# the package by its import name through .lint/stepline, a link to runtime/.
lint: $(STAMP)
	$(BIN)/ruff check runtime infra bench
	$(BIN)/ruff format --check runtime infra bench
	@mkdir -p .lint && ln -sfn ../runtime .lint/stepline
	MYPYPATH=.lint $(BIN)/mypy -p stepline -p infra -p bench

# The dashboard tests drive Debian's chromium: installed here when missing (apt-get, as root).
test: $(STAMP) lint
	$(BIN)/python -m tests.dashboard.chromium
	$(BIN)/pytest -q $(PYTEST_ARGS)

# The example app (five workflows on Stepline's own SDK, examples/app.py, port 8289) and the
# runtime (port 8288), stopped together with Ctrl-C.
dev: $(STAMP)
	@bash -c 'trap "kill 0" EXIT; \
	  INNGEST_DEV=http://127.0.0.1:8288 PORT=8289 $(BIN)/python -m examples.app & \
	  $(BIN)/stepline dev -u http://127.0.0.1:8289/api/inngest'

# The Lambda layer's lock file (infra/lambda-requirements.txt): pyproject's runtime dependencies
# and lambda extra, pinned with hashes; the layer is installed from it with --require-hashes. Run
# it after changing those dependencies (a build from a stale lock stops and says so).
lambda-lock: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m infra.lambda_lock

bench: $(STAMP)
	$(BIN)/python -m bench.steps
	$(BIN)/python -m bench.flow

# 1,000 runs of mixed workflows under random faults on each backend, audited (tests/chaos).
# CHAOS_ARGS="--runs 200 --backend sqlite --seed 7" for a smaller or different run.
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .lint .mypy_cache .ruff_cache tests/ts/v*/node_modules .cdk-build
