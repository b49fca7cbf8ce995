# Everything runs inside .venv, created from nothing by the first target that needs it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What `make test` needs (the test extra: playwright, moto, the CDK, hypothesis, ...), and what
# running `make dev` needs (the runtime and the examples' Flask), each installed once.
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
DEV_EXTRAS := server,examples

.PHONY: test lint dev bench chaos clean lambda-lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[server,test]'
	touch $(STAMP)

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[$(DEV_EXTRAS)]'
	touch $(DEV_STAMP)

# ruff (lint and format check) and mypy on the runtime, the CDK app and the benchmarks. mypy reads
# the package by its import name through .lint/stepline, a link to runtime/.
lint: $(STAMP)
	$(BIN)/ruff check runtime infra bench
	$(BIN)/ruff format --check runtime infra bench
	@mkdir -p .lint && ln -sfn ../runtime .lint/stepline
	MYPYPATH=.lint $(BIN)/mypy -p stepline -p infra -p bench

# The dashboard tests drive Debian's chromium, and the TypeScript SDK tests need Node 20+ and
# npm: each is installed here when missing (apt-get as root; Node else from PyPI's wheel), or
# one line says what is missing.
test: $(STAMP) lint
	$(BIN)/python -m tests.dashboard.chromium
	$(BIN)/python -m tests.ts.nodejs
	$(BIN)/pytest -q $(PYTEST_ARGS)

# The example app (five workflows on Stepline's own SDK, examples/app.py, port 8289) and the
# runtime (port 8288), stopped together with Ctrl-C.
dev: $(DEV_STAMP)
	@bash -c 'trap "kill 0" EXIT; \
	  INNGEST_DEV=http://127.0.0.1:8288 PORT=8289 $(BIN)/python -m examples.app & \
	  $(BIN)/stepline dev -u http://127.0.0.1:8289/api/inngest'

# The Lambda layer's lock file (infra/lambda-requirements.txt): pyproject's runtime dependencies
# and lambda extra, pinned with hashes; the layer is installed from it with --require-hashes. Run
# it after changing those dependencies (a build from a stale lock stops and says so).
lambda-lock: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m infra.lambda_lock

# bench.imports builds the wheel and two virtualenvs under .bench/ (the SDK alone, the runtime)
# the first time, each later run reinstalling the wheel only; bench.lambdas runs the handlers
# from the runtime's.
bench: $(STAMP)
	$(BIN)/python -m bench.steps
	$(BIN)/python -m bench.tracing
	$(BIN)/python -m bench.flow
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.imports
	$(BIN)/python -m bench.lambdas
	$(BIN)/python -m bench.aws_requests

# 1,000 runs of mixed workflows under random faults on each backend, audited (tests/chaos).
# CHAOS_ARGS="--runs 200 --backend sqlite --seed 7" for a smaller or different run.
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .bench .pytest_cache .lint .mypy_cache .ruff_cache tests/ts/v*/node_modules .cdk-build
