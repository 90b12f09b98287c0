# Everything runs in .venv, made from pyproject.toml: nothing needs installing by hand.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PORT ?= 3000

.PHONY: test serve bench lint clean

$(VENV)/.installed: pyproject.toml layers/session_manager/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

test: $(VENV)/.installed  ## the whole suite, lint included
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

serve: $(VENV)/.installed  ## the API on http://127.0.0.1:$(PORT), no Docker, no AWS account
	PORT=$(PORT) $(PY) -m devtools.serve

# A Lambda-like Python for cold-start probes: boto3 and what the layer ships, plus the
# X-Ray SDK that only the opt-in Tracer row imports.
.venv-lambda/.installed: layers/session_manager/requirements.txt
	$(PYTHON) -m venv .venv-lambda
	.venv-lambda/bin/python -m pip install --quiet boto3 -r layers/session_manager/requirements.txt \
		'aws-xray-sdk>=2.12,<3'
	touch $@

bench: $(VENV)/.installed .venv-lambda/.installed  ## cold start and throughput, as tables
	$(PY) -m bench

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .venv-lambda .aws-sam .pytest_cache .ruff_cache
