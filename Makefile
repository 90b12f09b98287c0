# Everything runs in .venv, made from pyproject.toml: nothing needs installing by hand.
# Each target installs only the extra it needs (serve < test, bench); a stamp per extra
# records what is in, and is redone when pyproject.toml or the layer's requirements change.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PORT ?= 3000
DEPS := pyproject.toml layers/session_manager/requirements.txt

.PHONY: test test-floor serve bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-%: $(DEPS) | $(PY)
	$(PY) -m pip install --quiet -e '.[$*]'
	touch $@

test: $(VENV)/.installed-test test-floor  ## the whole suite, lint and type check included
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
.venv-floor/.installed: $(DEPS)
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

serve: $(VENV)/.installed-serve  ## the API on http://127.0.0.1:$(PORT), no Docker, no AWS account
	PORT=$(PORT) $(PY) -m local_api

# A Lambda-like Python for cold-start probes: boto3 and what the layer ships, plus the
# X-Ray SDK that only the opt-in Tracer row imports.
.venv-lambda/.installed: layers/session_manager/requirements.txt
	$(PYTHON) -m venv .venv-lambda
	.venv-lambda/bin/python -m pip install --quiet boto3 -r layers/session_manager/requirements.txt \
		'aws-xray-sdk>=2.12,<3'
	touch $@

bench: $(VENV)/.installed-bench .venv-lambda/.installed  ## cold start, tokens, HTTP, costs
	$(PY) -m bench

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .venv-floor .venv-lambda .aws-sam .pytest_cache .ruff_cache .mypy_cache
