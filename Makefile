# Everything runs in .venv, made from pyproject.toml: nothing needs installing by hand.
# Each target installs only the extra it needs (serve < test, bench); a stamp per extra
# records what is in, and is redone when pyproject.toml or the layer's requirements change.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PORT ?= 3000
DEPS := pyproject.toml layers/session_manager/requirements.txt

.PHONY: help test serve agent bench lint clean e2e

help:  ## this list: each target and what it does
	@grep -E '^[a-z][a-z0-9_-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/:[^#]*## /\t/' | expand -t 8

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-%: $(DEPS) | $(PY)
	$(PY) -m pip install --quiet -e '.[$*]'
	touch $@

test: $(VENV)/.installed-test  ## the whole suite with lint and types (~3 min, 761 MB of .venv, 155 packages)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy  # what it checks, and how strictly: [tool.mypy] in pyproject.toml
	$(PY) -m pytest -n auto

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

bench: $(VENV)/.installed-bench .venv-lambda/.installed  ## benchmarks (long); rewrites the tracked docs/benchmark.png
	$(PY) -m bench

lint: $(VENV)/.installed-test  ## ruff only
	$(VENV)/bin/ruff check .

clean:  ## remove the venvs, the SAM build and every cache (.hypothesis too)
	rm -rf $(VENV) .venv-lambda .aws-sam .pytest_cache .ruff_cache .mypy_cache .hypothesis \
		examples/typescript/node_modules examples/typescript/dist

# The TypeScript agents' helper (examples/typescript): typed, then tested under Node against
# a moto server from the venv. Skipped, with a message, where Node is not installed.
.PHONY: test-typescript
test: test-typescript
test-typescript: $(VENV)/.installed-test  ## the TypeScript helper's tests under Node (make test runs them)
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
		cd examples/typescript && npm ci --no-audit --no-fund --loglevel=error && npm run --silent typecheck && \
		MOTO_SERVER=$(abspath $(VENV))/bin/moto_server PYTHON=$(abspath $(PY)) npm test --silent; \
	else echo "test-typescript: skipped: node and npm are not installed"; fi
