#!/usr/bin/env bash
# Print the Python that `make` builds .venv/ with: the newest Python >= 3.13 found (gym-super-mario-bros 8 on
# nes-py 9: emulator snapshots, frontier starts), else python3 with one line on stderr saying what that loses.
# Looks at python3.14/python3.13/python3 on PATH (pyenv's shims only count if they run), then pyenv's versions folder.
# With --legacy: a Python 3.10-3.12 for the legacy backend (gym-super-mario-bros 7.4 on nes-py 8), which CI tests too.
set -uo pipefail
if [ "${1:-}" = "--legacy" ]; then
  legacy() { "$1" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info < (3, 13))' >/dev/null 2>&1; }
  for name in python3.11 python3.12 python3.10 python3; do
    if command -v "$name" >/dev/null 2>&1 && legacy "$name"; then
      command -v "$name"
      exit 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    for candidate in $(ls -d "$(pyenv root)"/versions/3.1[0-2]*/bin/python3 2>/dev/null | sort -rV); do
      if legacy "$candidate"; then
        echo "$candidate"
        exit 0
      fi
    done
  fi
  echo "make: no Python 3.10-3.12 found for the legacy backend (set PYTHON_LEGACY=/path/to/python3.11)" >&2
  exit 1
fi
ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 13))' >/dev/null 2>&1; }
for name in python3.14 python3.13 python3; do
  if command -v "$name" >/dev/null 2>&1 && ok "$name"; then
    command -v "$name"
    exit 0
  fi
done
if command -v pyenv >/dev/null 2>&1; then
  for candidate in $(ls -d "$(pyenv root)"/versions/3.1[3-9]*/bin/python3 2>/dev/null | sort -rV); do
    if ok "$candidate"; then
      echo "$candidate"
      exit 0
    fi
  done
fi
echo "make: no Python >= 3.13 found; using python3 ($(python3 -V 2>&1)): the legacy backend (nes-py 8) has no emulator snapshots, so frontier_starts is unavailable (set PYTHON=/path/to/python3.13 to choose one)" >&2
command -v python3
