# Every target creates/refreshes .venv/ when pyproject.toml changed, then runs inside it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sb3_mario-installed
# CPU build of torch that lies on this machine's disk; an unpinned torch would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# Where PyPI is the only index, its Linux torch is the CUDA build: TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
ALGO ?= ddqn
ENV_ID ?= SuperMarioBros-1-1-v0
TRAIN_ARGS ?= -P

# The other backend (gym-super-mario-bros 8, nes-py 9, numpy 2) needs Python >= 3.13: `make test-py313` (CI runs it).
PYTHON313 ?= /root/.pyenv/versions/3.13.0/bin/python3.13
BACKEND_TESTS := tests/test_envs.py tests/test_stall.py tests/test_evaluation.py tests/test_ddqn.py tests/test_buffer.py tests/test_pretrained.py

.PHONY: install train test test-all test-py313 lint type bench clean

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -e ".[tests,postgres]"
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(PY) -m sb3_mario.train --algo $(ALGO) --env $(ENV_ID) $(TRAIN_ARGS)

# test files run in parallel worker processes, a file's tests together (they share module fixtures): up to 4 at once
PYTEST_PARALLEL ?= -n auto --maxprocesses 4 --dist loadfile

test: $(STAMP)
	bash scripts/ensure-postgres.sh
	$(PY) -m pytest -q $(PYTEST_PARALLEL)

test-all: $(STAMP)
	bash scripts/ensure-postgres.sh
	$(PY) -m pytest -q $(PYTEST_PARALLEL) -m ""

test-py313:
	$(MAKE) install VENV=.venv313 PYTHON=$(PYTHON313)
	.venv313/bin/python -m pytest -q $(PYTEST_PARALLEL) $(BACKEND_TESTS)

lint: $(STAMP)
	$(PY) -m ruff check sb3_mario tests bench
	$(PY) -m ruff format --check sb3_mario tests bench

type: $(STAMP)
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .venv313 build *.egg-info .pytest_cache .mypy_cache .ruff_cache
