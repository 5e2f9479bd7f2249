# Every target creates/refreshes .venv/ when pyproject.toml changed, then runs inside it.
# .venv/ is a Python >= 3.13 (gym-super-mario-bros 8 on nes-py 9: emulator snapshots, frontier starts) when one is
# found (scripts/find-python.sh: python3.13 if it runs, else pyenv's versions), else python3 with a one-line warning.
PYTHON ?= $(shell bash scripts/find-python.sh)
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
VENV := .venv
PY := $(VENV)/bin/python
# one stamp per Python version: a .venv/ made with another Python (e.g. 3.11 before 3.13 was the default) is rebuilt
STAMP := $(VENV)/.sb3_mario-installed-py$(PYVER)
# On Python 3.11 a CPU build of torch 2.13.0 lies on this machine's disk; on 3.13 it comes from PyPI, whose Linux
# torch is the CUDA build (~2.5 min here). For the CPU build: make TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
ALGO ?= ddqn
ENV_ID ?= SuperMarioBros-1-1-v0
# the progress line, and the replay buffer in every checkpoint, so that `-i` resumes as if never stopped
TRAIN_ARGS ?= -P --save-replay-buffer

# The legacy backend (gym-super-mario-bros 7.4 on nes-py 8, numpy 1) on Python < 3.13: `make test-legacy` (CI runs it).
PYTHON_LEGACY ?= $(shell bash scripts/find-python.sh --legacy)
BACKEND_TESTS := tests/test_envs.py tests/test_stall.py tests/test_evaluation.py tests/test_ddqn.py tests/test_buffer.py \
	tests/test_pretrained.py tests/test_frontier.py tests/test_portable.py

.PHONY: install train test test-slow test-all test-legacy lint type bench clean

$(STAMP): pyproject.toml setup.py
	@if test -x $(PY) && [ "$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYVER)" ]; then \
		echo "make: $(VENV) is another Python than $(PYTHON) ($(PYVER)): rebuilding it"; rm -rf $(VENV); fi
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

# the contributor's suite: every test but the few long end-to-end ones marked slow (<= 10 minutes on 2 cores)
test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_PARALLEL)

# the long end-to-end tests only (CI runs them after `make test`), the real PostgreSQL server's among them
test-slow: $(STAMP)
	bash scripts/ensure-postgres.sh
	$(PY) -m pytest -q $(PYTEST_PARALLEL) -m slow

test-all: $(STAMP)
	bash scripts/ensure-postgres.sh
	$(PY) -m pytest -q $(PYTEST_PARALLEL) -m ""

# the backend's tests, their slow ones too (-m "": the shipped model's 20 protocol episodes on nes-py 8)
test-legacy:
	$(if $(PYTHON_LEGACY),,$(error no Python 3.10-3.12 found for the legacy backend: set PYTHON_LEGACY=/path/to/python3.11))
	$(MAKE) install VENV=.venv-legacy PYTHON=$(PYTHON_LEGACY)
	.venv-legacy/bin/python -m pytest -q $(PYTEST_PARALLEL) -m "" $(BACKEND_TESTS)

lint: $(STAMP)
	$(PY) -m ruff check sb3_mario tests bench scripts
	$(PY) -m ruff format --check sb3_mario tests bench scripts

type: $(STAMP)
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .venv-legacy .venv313 build *.egg-info .pytest_cache .mypy_cache .ruff_cache
