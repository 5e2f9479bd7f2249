#!/usr/bin/env bash
# Print the Python that `make` builds .venv/ with: the newest Python >= 3.13 found (gym-super-mario-bros 8 on
# nes-py 9: emulator snapshots, frontier starts), else python3 with one line on stderr saying what that loses.
# Looks at python3.14/python3.13/python3 on PATH (pyenv's shims only count if they run), then pyenv's versions folder.
# With --legacy: a Python 3.10-3.12 for the legacy backend (gym-super-mario-bros 7.4 on nes-py 8), which CI tests too.
set -uo pipefail

# find "<version test>" "<pyenv versions glob>" names...: the first interpreter that runs and passes the test
find() {
  local test=$1 pattern=$2 candidate
  shift 2
  for candidate in "$@" $(ls -d "$(pyenv root 2>/dev/null)"/versions/$pattern/bin/python3 2>/dev/null | sort -rV); do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import sys; sys.exit(not ($test))" >/dev/null 2>&1; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

if [ "${1:-}" = "--legacy" ]; then
  find "(3, 10) <= sys.version_info < (3, 13)" "3.1[0-2]*" python3.11 python3.12 python3.10 python3 && exit 0
  echo "make: no Python 3.10-3.12 found for the legacy backend (set PYTHON_LEGACY=/path/to/python3.11)" >&2
  exit 1
fi
find "sys.version_info >= (3, 13)" "3.1[3-9]*" python3.14 python3.13 python3 && exit 0
echo "make: no Python >= 3.13 found; using python3 ($(python3 -V 2>&1)): the legacy backend (nes-py 8) has no" \
  "emulator snapshots, so frontier_starts is unavailable (set PYTHON=/path/to/python3.13 to choose one)" >&2
command -v python3
