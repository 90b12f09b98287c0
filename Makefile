# Everything runs in .venv, made from pyproject.toml: nothing needs installing by hand.
# Each target installs only the extra it needs (serve < test, bench); a stamp per extra
# records what is in, and is redone when pyproject.toml or the layer's requirements change.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PORT ?= 3000
DEPS := pyproject.toml layers/session_manager/requirements.txt

.PHONY: help test test-floor test-typescript serve agent bench lint clean e2e

help:  ## this list: each target and what it does
	@grep -E '^[a-z][a-z0-9_-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/:[^#]*## /\t/' | expand -t 8

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-%: $(DEPS) | $(PY)
	$(PY) -m pip install --quiet -e '.[$*]'
	touch $@

test: $(VENV)/.installed-test test-floor test-typescript  ## everything: lint, types, the suite on the newest and the floor botocore, the TypeScript helper (~6 min)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy  # what it checks, and how strictly: [tool.mypy] in pyproject.toml
	$(PY) -m pytest -n auto

# The layer runs on the Lambda runtime's boto3, which is older than the newest that .venv
# gets: its tests and the functions' run again on the floor pyproject.toml declares (keep
# the two in step). moto: the newest 5.x, which works with that botocore. The X-Ray SDK and
# the stubs: tests of the opt-in Tracer and of what is not imported at run time. The
# SignalWire SDK interop tests are left to .venv (they need the SDKs; they test tokens).
BOTOCORE_FLOOR := 1.34.0
FLOOR_MOTO := 5.2.5
.venv-floor/.installed: $(DEPS) Makefile  # the pins above live here
	$(PYTHON) -m venv .venv-floor
	.venv-floor/bin/python -m pip install --quiet --upgrade pip
	.venv-floor/bin/python -m pip install --quiet -e '.[serve]' \
		'boto3==$(BOTOCORE_FLOOR)' 'botocore==$(BOTOCORE_FLOOR)' \
		'moto[dynamodb,secretsmanager]==$(FLOOR_MOTO)' \
		'pytest>=8.0,<10' 'pytest-xdist>=3.5,<4' 'hypothesis>=6.100,<7' \
		'aws-xray-sdk>=2.12,<3' 'mypy-boto3-dynamodb>=1.34,<2' 'mypy-boto3-secretsmanager>=1.34,<2'
	touch $@

test-floor: .venv-floor/.installed  ## the layer's and the functions' tests on the floor botocore
	.venv-floor/bin/python -m pytest -n auto -p no:cacheprovider tests/session_manager \
		tests/functions --ignore=tests/session_manager/test_sdk_interop.py

# The TypeScript agents' helper (examples/typescript): typed, then tested under Node against
# a moto server from the venv. Skipped, with a message, where Node is not installed.
test-typescript: $(VENV)/.installed-test  ## the TypeScript helper's tests under Node (make test runs them)
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
		cd examples/typescript && npm ci --no-audit --no-fund --loglevel=error && npm run --silent typecheck && \
		MOTO_SERVER=$(abspath $(VENV))/bin/moto_server PYTHON=$(abspath $(PY)) npm test --silent; \
	else echo "test-typescript: skipped: node and npm are not installed"; fi

serve: $(VENV)/.installed-serve  ## the API on http://127.0.0.1:$PORT (3000), no Docker, no AWS account
	PORT=$(PORT) $(PY) -m local_api

# examples/agent (an SDK agent with a secure tool) on $$AGENT_PORT (3001), beside the API on
# $$PORT, sharing its table and key in one process: see examples/agent/README.md.
agent: $(VENV)/.installed-agent  ## examples/agent on http://127.0.0.1:3001 beside make serve's API, one process
	PORT=$(PORT) $(PY) -m devtools.local_agent

# The contract suite (tests/contract) against a deployed stack: read-only but for the
# sessions it creates and ends. AUTH=iam signs with SigV4 from the default credential
# chain; AUTH=jwt sends E2E_JWT as a bearer token. See tests/contract/e2e.py.
e2e: $(VENV)/.installed-test  ## make e2e API_URL=https://... [AUTH=iam|jwt]
	@API_URL="$(API_URL)" AUTH="$(AUTH)" $(PY) -m tests.contract.e2e

# A Lambda-like Python for cold-start probes: boto3 and what the layer ships, plus the
# X-Ray SDK that only the opt-in Tracer row imports.
.venv-lambda/.installed: layers/session_manager/requirements.txt
	$(PYTHON) -m venv .venv-lambda
	.venv-lambda/bin/python -m pip install --quiet boto3 -r layers/session_manager/requirements.txt \
		'aws-xray-sdk>=2.12,<3'
	touch $@

bench: $(VENV)/.installed-bench .venv-lambda/.installed  ## benchmarks (~80 s, leave the machine quiet); rewrites the tracked docs/benchmark.png
	$(PY) -m bench

lint: $(VENV)/.installed-test  ## ruff only
	$(VENV)/bin/ruff check .

clean:  ## remove the venvs, the SAM build and every cache (.hypothesis too)
	rm -rf $(VENV) .venv-floor .venv-lambda .aws-sam .pytest_cache .ruff_cache .mypy_cache .hypothesis \
		examples/typescript/node_modules examples/typescript/dist
