# Everything a fresh clone needs: `make run` starts the local stack, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.lock | cut -d' ' -f1)

.PHONY: install run test test-fast synth demo bench clean

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
	$(PY) -m infra.app

demo: install
	$(PY) -m scripts.demo

bench: install
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) cdk.out build .pytest_cache
