# Everything a fresh clone needs: `make run` starts the local stack, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.lock | cut -d' ' -f1)
# The AWS stage `synth`, `deploy` and `destroy` work on: dev or prod (stack Sendline-<stage>).
STAGE ?= dev
# The CDK CLI, fetched by npx at this major version (deploying needs AWS credentials and a
# bootstrapped account: `npx aws-cdk@2 bootstrap` once per account and region).
# Node 20's end-of-life banner from the CDK runtime would bury the synth's own report.
QUIET_NODE := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
CDK := $(QUIET_NODE) npx --yes aws-cdk@2

.PHONY: install run test test-fast synth bootstrap deploy destroy demo bench clean

$(STAMP): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m devstack $(ARGS)

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest tests/unit tests/integration

synth: install
	$(QUIET_NODE) $(PY) -m infra.app -c stage=$(STAGE) $(ARGS)

# Once per AWS account and region: the bucket and roles `cdk deploy` uploads assets with.
bootstrap: install
	$(CDK) bootstrap $(ARGS)

deploy: install
	$(CDK) deploy -c stage=$(STAGE) $(ARGS)

destroy: install
	$(CDK) destroy -c stage=$(STAGE) $(ARGS)

demo: install
	$(PY) -m scripts.demo

bench: install
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) cdk.out build .pytest_cache
