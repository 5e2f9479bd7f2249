#!/usr/bin/env bash
# `make test-slow` and `make test-all` call this: the distributed-search test starts a real PostgreSQL server (initdb/pg_ctl in a temporary
# directory). Install the server binaries where they are missing (Debian/Ubuntu: apt); elsewhere say how, and let
# the test that needs them fail with that message.
set -euo pipefail
if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "installing PostgreSQL's server (apt-get install postgresql) for the distributed-search tests" >&2
  if $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null; then
    exit 0
  fi
fi
echo "PostgreSQL's server binaries (initdb, pg_ctl) are missing: install PostgreSQL (e.g. brew install postgresql," \
  "apt-get install postgresql); test_postgres_* will fail until then" >&2
